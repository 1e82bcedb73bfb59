"""Relativistic and least-squares losses: rpgan and lsgan, R1 and R2 penalties, and the opt-in real scores of the
generator step (issue 16, item 1)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gantoolkit.builtin.losses.bce import BCE
from gantoolkit.builtin.losses.least_squares import LSGAN
from gantoolkit.builtin.losses.relativistic import RPGAN
from gantoolkit.components import Loss, PenaltyContext
from gantoolkit.config import RunConfig, apply_layer
from gantoolkit.errors import ConfigError
from gantoolkit.options import parse_assignments
from gantoolkit.testing import check_loss
from tests.conftest import TINY_DCGAN
from tests.test_cli import tensors_equal, train_args

pytestmark = pytest.mark.usefixtures("one_thread")


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# -- the losses' values ------------------------------------------------------------------------------------------


def test_rpgan_pairs_each_fake_with_its_real():
    real, fake = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 1.0, 0.5])
    loss = RPGAN()
    assert loss.needs_real_scores and not loss.critic_batchnorm
    # critic softplus(D(fake) - D(real)), generator softplus(D(real) - D(fake)), pair by pair
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(
        (softplus(-1.0) + softplus(3.0) + softplus(0.0)) / 3, rel=1e-6)
    assert loss.generator_loss(fake, real).item() == pytest.approx(
        (softplus(1.0) + softplus(-3.0) + softplus(0.0)) / 3, rel=1e-6)
    # pairs, not means: the same scores paired otherwise give another loss
    paired_otherwise = loss.discriminator_loss(real.flip(0), fake).item()
    assert paired_otherwise != pytest.approx(loss.discriminator_loss(real, fake).item())
    with pytest.raises(TypeError, match="needs the real scores"):
        loss.generator_loss(fake)
    with pytest.raises(ValueError, match="pairs each fake score with a real one"):
        loss.discriminator_loss(real, fake[:2])


def test_lsgan_regresses_real_to_one_and_fake_to_zero():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    loss = LSGAN()
    assert not loss.needs_real_scores
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0 + 4) / 2 + 0.5 * (0 + 4) / 2)
    assert loss.generator_loss(fake).item() == pytest.approx(0.5 * (1 + 9) / 2)
    assert loss.discriminator_loss(torch.ones(4), torch.zeros(4)).item() == 0.0
    assert loss.generator_loss(torch.ones(4)).item() == 0.0


# -- R1 and R2 ---------------------------------------------------------------------------------------------------


def ctx(critic, real, fake, step: int = 0) -> PenaltyContext:
    return PenaltyContext(critic, real, fake, torch.Generator().manual_seed(0), step)


def test_r1_and_r2_are_zero_centred_on_real_and_fake_data():
    """D(x) = ‖x − c‖² has gradient 2(x − c): zero at c, so a penalty centred at zero (not at one, as WGAN-GP's)
    vanishes on a batch at c; each penalty sees only its own batch."""
    c = torch.tensor([0.5, -1.0])
    at_c, elsewhere = c.repeat(8, 1), torch.randn(8, 2, generator=torch.Generator().manual_seed(1))

    def critic(x):
        return ((x - c) ** 2).sum(1)

    expected = float((2 * (elsewhere - c)).pow(2).sum(1).mean())
    assert RPGAN(r1=2.0, r2=0.0).penalty(ctx(critic, at_c, elsewhere)).item() == 0.0
    assert RPGAN(r1=0.0, r2=2.0).penalty(ctx(critic, elsewhere, at_c)).item() == 0.0
    assert RPGAN(r1=2.0, r2=0.0).penalty(ctx(critic, elsewhere, at_c)).item() == pytest.approx(expected, rel=1e-6)
    assert RPGAN(r1=0.0, r2=2.0).penalty(ctx(critic, at_c, elsewhere)).item() == pytest.approx(expected, rel=1e-6)
    # R3GAN's gamma/2 * (R1 + R2): a linear critic x·w has gradient w on both batches
    w = torch.tensor([3.0, -1.0])
    both = RPGAN(r1=0.5, r2=0.25).penalty(ctx(lambda x: x @ w, elsewhere, elsewhere + 5))
    assert both.item() == pytest.approx(0.5 / 2 * 10 + 0.25 / 2 * 10, rel=1e-6)
    assert BCE(r2=0.25).penalty(ctx(lambda x: x @ w, elsewhere, elsewhere)).item() == pytest.approx(0.25 / 2 * 10)
    assert RPGAN(r1=0.0, r2=0.0).penalty(ctx(critic, elsewhere, elsewhere)) is None
    assert RPGAN(r1=0.0, r2=0.0).critic_batchnorm and not BCE(r2=1.0).critic_batchnorm


def test_the_penalties_train_the_critic_towards_flatness_and_can_be_lazy():
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    w = torch.tensor([3.0, -1.0])
    scale = torch.tensor(2.0, requires_grad=True)
    RPGAN(r1=1.0, r2=1.0).penalty(ctx(lambda x: scale * (x @ w), real, fake)).backward()
    assert scale.grad.item() > 0  # a smaller scale is a flatter critic
    lazy = RPGAN(r1=1.0, r2=1.0, lazy_every=4)
    at = [lazy.penalty(ctx(lambda x: x @ w, real, fake, step)) for step in range(5)]
    assert at[1] is None and at[2] is None and at[3] is None
    assert at[0].item() == pytest.approx(4 * (0.5 * 10 + 0.5 * 10), rel=1e-6) and at[4].item() == at[0].item()


@pytest.mark.parametrize("options, words", [
    ({"r2": -1.0}, "rpgan r2 cannot be negative, got -1.0"),
    ({"r1": float("nan")}, "rpgan r1 must be a finite number"),
    ({"lazy_every": 0}, "rpgan lazy_every must be at least 1"),
])
def test_bad_rpgan_options_are_refused(options, words):
    with pytest.raises(ConfigError, match=words):
        RPGAN(**options)


# -- the trainer's real-score pass ---------------------------------------------------------------------------------


class OneArgument(Loss):
    """A plugin loss written before needs_real_scores existed: generator_loss takes the fake scores alone."""

    calls = 0

    def discriminator_loss(self, real_scores, fake_scores):
        return torch.nn.functional.softplus(-real_scores).mean() + torch.nn.functional.softplus(fake_scores).mean()

    def generator_loss(self, fake_scores):
        OneArgument.calls += 1
        return torch.nn.functional.softplus(-fake_scores).mean()


def test_a_plugin_loss_with_a_one_argument_generator_loss_still_trains_and_resumes():
    OneArgument.calls = 0
    check_loss(OneArgument, name="one-argument")  # trains on images and vectors, saves, reloads, resumes exactly
    assert OneArgument.calls > 0


def make_trainer(tmp_path: Path, loss: str | dict, **settings):
    from gantoolkit.data.loading import load_dataset
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry
    from gantoolkit.training.trainer import Trainer

    config = apply_layer(RunConfig(), {"arch": {"name": "dcgan", "ngf": 8, "ndf": 8}, "latent_dim": 16,
                                       "batch_size": 16, "image_size": 8, "device": "cpu", "cond": "onehot",
                                       "loss": loss, **settings}, "test")
    registry = get_registry()
    torch.manual_seed(config.validate().seed)
    dataset = load_dataset(config, registry)
    return Trainer(build_models(config, dataset.info, registry), dataset, tmp_path, torch.device("cpu"))


@pytest.mark.parametrize("g_batch", ["fresh", "reuse"])
@pytest.mark.parametrize("loss, extra_pass", [("bce", False), ("lsgan", False), ("wgan-gp", False), ("rpgan", True)])
def test_the_generator_step_scores_real_data_only_for_a_loss_that_asks(tmp_path, loss, extra_pass, g_batch):
    trainer = make_trainer(tmp_path, loss, n_critic=2, g_batch=g_batch)
    forward_d = trainer.forward_d
    calls: list[tuple[torch.Tensor, torch.Tensor | None, bool]] = []

    def recording(x, labels):
        calls.append((x, labels, torch.is_grad_enabled()))
        return forward_d(x, labels)

    trainer.forward_d = recording
    trainer.train_step()
    critic_calls, generator_calls = calls[:4], calls[4:]  # two critic steps: reals, then fakes
    assert len(generator_calls) == (2 if extra_pass else 1)
    assert generator_calls[0][2]  # the fakes, with the graph the generator learns through
    if extra_pass:
        real, labels, grad = generator_calls[1]
        assert real is critic_calls[2][0] and labels is critic_calls[2][1]  # the last critic step's reals
        assert not grad  # the critic's scores of the reals carry no gradient


# -- the conformance kit, the CLI, resume ----------------------------------------------------------------------


@pytest.mark.parametrize("loss, options", [
    ("rpgan", None),
    ("rpgan", {"r1": 0.5, "r2": 0.25, "lazy_every": 2}),
    ("lsgan", None),
    ("bce", {"r1": 1.0, "r2": 1.0}),
])
def test_the_new_losses_pass_the_conformance_kit(loss, options):
    check_loss(loss, options)


def test_rpgan_trains_with_r1_and_r2_through_the_cli(cli):
    result = cli(*train_args("--loss", "rpgan", "--loss-opt", "r1=0.5,r2=0.25", "--cond", "onehot", "--steps", "4",
                             "--out", "run"))
    assert result.exit_code == 0, result.output
    info = json.loads(cli("info", "run", "--json").stdout)
    assert info["loss"]["name"] == "rpgan"
    assert info["loss"]["options"] == {"r1": 0.5, "r2": 0.25, "lazy_every": 1}  # one --loss-opt, two pairs
    records = [json.loads(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 4 and all(r["penalty"] > 0 for r in records)
    assert Path("run/checkpoints/step-00000004.safetensors").exists()


def test_lsgan_trains_through_the_cli(cli):
    result = cli(*train_args("--loss", "lsgan", "--cond", "none", "--steps", "4", "--out", "run"))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 4 and all(r["penalty"] == 0 for r in records)


@pytest.mark.parametrize("loss", [
    ["--loss", "rpgan"],
    ["--loss", "rpgan", "--g-batch", "reuse", "--loss-opt", "lazy_every=2"],
    ["--loss", "lsgan"],
    ["--loss", "bce", "--loss-opt", "r2=1"],
])
def test_resume_equals_uninterrupted_training_bit_for_bit(cli, loss):
    """As tests/test_cli.py's test of the same name, for the new losses."""
    common = (*loss, "--cond", "onehot", "--ema", "0.9", "--lr-decay", "0", "--checkpoint-every", "3")
    assert cli(*train_args(*common, "--steps", "6", "--out", "straight")).exit_code == 0
    assert cli(*train_args(*common, "--steps", "3", "--out", "split")).exit_code == 0
    result = cli("train", "--resume", "split", "--steps", "6")
    assert result.exit_code == 0, result.output
    assert tensors_equal(Path("straight/checkpoints/step-00000006.safetensors"),
                         Path("split/checkpoints/step-00000006.safetensors"))


@pytest.mark.parametrize("loss, option, words", [
    ("rpgan", "r2=-1", "rpgan r2 cannot be negative, got -1.0"),
    ("bce", "r2=-1", "bce r2 cannot be negative, got -1.0"),
    ("rpgan", "r1=inf", "rpgan r1 must be a finite number"),
])
def test_a_bad_penalty_weight_is_one_line_and_exit_code_2(cli, loss, option, words):
    result = cli("train", *TINY_DCGAN, "--loss", loss, "--loss-opt", option, "--steps", "2", "--out", "run")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and words in lines[0], result.output
    assert not Path("run").exists()


def test_one_option_flag_may_hold_several_pairs():
    assert parse_assignments(["r1=1,r2=0.5", "betas=0,0.9", "policy=color,translation"], "--loss-opt") == {
        "r1": "1", "r2": "0.5", "betas": "0,0.9", "policy": "color,translation"}
