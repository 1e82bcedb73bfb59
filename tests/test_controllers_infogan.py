"""InfoGAN and its supervised variant as training controllers: codes, the Q head in the critic, learning, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import TINY_DCGAN

#: the loss's own schedule (not the digits' recommendation: R1, EMA, decayed rates), which these tests were set for
TINY = [*TINY_DCGAN, "--image-size", "8", "--log-every", "50", "--loss-opt", "r1=0", "--ema", "0", "--lr-decay", "0"]


pytestmark = pytest.mark.usefixtures("one_thread")


def critic_and_controller(run: Path):
    """The trained critic (with its Q head) and the controller, rebuilt from the newest checkpoint."""
    from gantoolkit.files.checkpoint import load_checkpoint
    from gantoolkit.files.runs import resolve_checkpoint
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry

    ckpt = load_checkpoint(resolve_checkpoint(run))
    models = build_models(ckpt.config, ckpt.data, get_registry())
    models.critic.load_state_dict(ckpt.section("critic"))
    name, controller = next(iter(models.controllers.items()))
    return models.critic.eval(), controller, models.critic.controllers[name]


def test_q_head_recovers_the_categorical_code(cli, tmp_path):
    """λ·L_I in both losses: G learns to show the category and Q (in the critic) learns to read it back."""
    from gantoolkit.sampling.generator import load_generator

    result = cli("train", *TINY, "--batch-size", "32", "--steps", "150", "--controller", "infogan",
                 "--controller-opt", "lambda_cat=5", "--controller-opt", "lambda_cont=1", "--out", "run")
    assert result.exit_code == 0, result.output
    model = load_generator(tmp_path / "run")
    critic, controller, q = critic_and_controller(tmp_path / "run")
    assert model.generator.code_dim == controller.code_dim == 12  # one 10-way code, two continuous
    codes = model.codes(400, seed=1)
    assert (codes[:, :10].sum(1) == 1).all() and codes[:, 10:].abs().max() <= 1
    with torch.no_grad():
        _, features = critic.score_and_features(model.generate(model.latents(400, 1), None, codes))
    read = controller.predict_codes(features, q)
    assert (read["cat0"] == codes[:, :10].argmax(1)).float().mean() > 0.5  # chance is 0.1


def test_infogan_resume_is_bit_identical(cli, tmp_path):
    args = ["train", *TINY, "--steps", "6", "--controller", "infogan", "--controller-opt", "continuous=3",
            "--checkpoint-every", "3"]
    assert cli(*args, "--out", "whole").exit_code == 0
    assert cli(*args[:-2], "--steps", "3", "--out", "half").exit_code == 0
    assert cli("train", "--resume", "half", "--steps", "6").exit_code == 0
    a = load_file(str(tmp_path / "whole/checkpoints/step-00000006.safetensors"))
    b = load_file(str(tmp_path / "half/checkpoints/step-00000006.safetensors"))
    q_keys = [k for k in a if k.startswith("critic.controllers.infogan.")]
    assert q_keys and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the Q head is trained by the critic's optimizer: every critic parameter, Q's included, has Adam state
    critic, _, q = critic_and_controller(tmp_path / "whole")
    indices = {int(k.split(".")[3]) for k in a if k.startswith("optim.critic.state.")}
    assert indices == set(range(len(list(critic.parameters())))) and len(list(q.parameters())) == 4


def test_supervised_variant_ties_the_code_to_labels(cli, tmp_path):
    from gantoolkit.builtin.datasets.digits import Digits
    from gantoolkit.data import DataRequest, to_model_space

    result = cli("train", *TINY, "--steps", "100", "--controller", "ss-infogan", "--controller-opt", "continuous=1",
                 "--out", "run")
    assert result.exit_code == 0, result.output
    critic, controller, q = critic_and_controller(tmp_path / "run")
    assert controller.categorical == (10,) and controller.code_dim == 11
    data = Digits().load(DataRequest(image_size=8))
    with torch.no_grad():
        _, features = critic.score_and_features(to_model_space(data.data, data.info))
    read = controller.predict_codes(features, q)["cat0"]
    assert (read == data.labels).float().mean() > 0.4  # category k now means digit k (chance: 0.1)


def test_controllers_refuse_bad_settings(cli):
    unlabelled = cli("train", *TINY, "--data", "fake:1x8x8", "--steps", "2", "--controller", "ss-infogan",
                     "--out", "a")
    assert unlabelled.exit_code == 2 and "has none" in unlabelled.output
    bad = cli("train", *TINY, "--steps", "2", "--controller", "infogan", "--controller-opt", "categorical=1",
              "--out", "b")
    assert bad.exit_code == 2 and "at least 2 categories" in bad.output
    editor = cli("train", *TINY, "--steps", "2", "--controller", "sefa", "--out", "c")
    assert editor.exit_code == 2 and "unknown controller 'sefa' ('sefa' is a finder: --method sefa)" in editor.output


def test_two_code_controllers_read_their_own_columns():
    from gantoolkit.builtin.datasets.digits import Digits
    from gantoolkit.config import Choice, RunConfig
    from gantoolkit.data import DataRequest
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry

    config = RunConfig(controllers=[Choice("infogan", {"categorical": "4", "continuous": 1}),
                                    Choice("ss-infogan", {"continuous": 2})], latent_dim=8)
    models = build_models(config, Digits().load(DataRequest(image_size=8)).info, get_registry())
    first, second = models.controllers["infogan"], models.controllers["ss-infogan"]
    assert (first.code_offset, first.code_dim, second.code_offset, second.code_dim) == (0, 5, 5, 12)
    codes = models.sample_codes(6, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert codes.shape == (6, 17)
    assert torch.equal(first.own_codes(codes), codes[:, :5]) and torch.equal(second.own_codes(codes), codes[:, 5:])
    assert (second.own_codes(codes)[:, :10].sum(1) == 1).all()
    assert [s["offset"] for s in second.slots()] == [5, 15, 16]


def test_codes_of_two_controllers_keep_apart_in_directions(cli, tmp_path):
    from gantoolkit.registry import get_registry
    from gantoolkit.sampling.generator import load_generator

    result = cli("train", *TINY, "--steps", "2", "--controller", "infogan", "--controller", "ss-infogan",
                 "--controller-opt", "infogan.categorical=3", "--controller-opt", "ss-infogan.continuous=1",
                 "--out", "both")
    assert result.exit_code == 0, result.output
    found = get_registry().create("finder", "infogan").find(load_generator(tmp_path / "both"))
    assert found.names == ["infogan.c0", "infogan.c1", "ss-infogan.c0"]
    assert [s["name"] for s in found.categorical] == ["infogan.cat0", "ss-infogan.cat0"]
    assert found.vectors.argmax(1).tolist() == [3, 4, 15]  # 3 + 2 columns, then 10 + 1
