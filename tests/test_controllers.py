"""Controllers on trained generators: interpolation, latent arithmetic, classifier-gradient editing, their commands."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gantoolkit.controllers.latent import interpolate, lerp, parse_expression, slerp
from gantoolkit.errors import ConfigError
from tests.conftest import TINY_DCGAN


def one_thread(fn, *args, **kwargs):
    """Tiny models run fastest on one thread (two threads on a busy 2-core machine can be many times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """An unconditional tiny DCGAN on 8x8 digits (60 steps) and a digits classifier (2 epochs), made once."""
    from gantoolkit.builtin.datasets.digits import Digits
    from gantoolkit.classifiers import save_classifier, train_classifier
    from gantoolkit.cli import build_app
    from gantoolkit.data import DataRequest
    from gantoolkit.registry import reset_registry

    root = tmp_path_factory.mktemp("controllers")
    reset_registry()
    args = ["train", *TINY_DCGAN, "--loss", "bce", "--cond", "none", "--image-size", "8", "--steps", "60",
            "--log-every", "60", "--out", str(root / "gan")]
    result = one_thread(CliRunner().invoke, build_app(), args)
    assert result.exit_code == 0, result.output
    clf, _ = one_thread(train_classifier, Digits().load(DataRequest(image_size=8)), epochs=2)
    save_classifier(root / "clf.safetensors", clf)
    return root


@pytest.fixture
def model(workdir):
    from gantoolkit.sampling.generator import load_generator

    return load_generator(workdir / "gan")


@pytest.fixture
def classifier(workdir):
    from gantoolkit.classifiers import load_classifier

    return load_classifier(workdir / "clf.safetensors")


# -- interpolation and arithmetic ------------------------------------------------------------------------------------


def test_lerp_and_slerp_endpoints_and_norms():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=g), torch.randn(64, generator=g)
    t = torch.linspace(0, 1, 9)
    for path in (lerp(a, b, t), slerp(a, b, t)):
        assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    # slerp moves the norm linearly from |a| to |b| (it never cuts through the low-density middle) ...
    assert torch.allclose(slerp(a, b, t).norm(dim=1), (1 - t) * a.norm() + t * b.norm(), atol=1e-4)
    # ... while the straight line does: its midpoint is much shorter than either end
    assert lerp(a, b, t)[4].norm() < 0.85 * min(a.norm(), b.norm())
    unit_a, unit_b = a / a.norm(), b / b.norm()
    assert torch.allclose(slerp(unit_a, unit_b, t).norm(dim=1), torch.ones(9), atol=1e-5)
    same = slerp(a, a, t)  # parallel vectors: no NaN
    assert torch.isfinite(same).all() and torch.allclose(same, a.expand(9, -1))
    with pytest.raises(ConfigError, match="frames"):
        interpolate(a, b, 1)


def test_latent_expressions_parse_and_refuse():
    terms = parse_expression("[1, 2,3] - 5 + 7")
    assert [(t.sign, t.seeds) for t in terms] == [(1, [1, 2, 3]), (-1, [5]), (1, [7])]
    assert [(t.sign, t.seeds) for t in parse_expression("-4")] == [(-1, [4])]
    for bad in ("", "1 2", "1 + ", "a - b", "[1,]"):
        with pytest.raises(ConfigError, match="expression"):
            parse_expression(bad)


def test_arithmetic_is_the_signed_sum_of_seed_latents(model):
    from gantoolkit.controllers.latent import evaluate_expression

    parts, result = evaluate_expression(model, parse_expression("[1,2] - 3 + 4"))
    z = {s: model.latents(1, s)[0] for s in (1, 2, 3, 4)}
    assert torch.allclose(parts[0], (z[1] + z[2]) / 2)
    assert torch.allclose(result, (z[1] + z[2]) / 2 - z[3] + z[4])


def test_interpolate_command_writes_png_gif_and_npz(cli, workdir, model):
    gan = workdir / "gan"
    result = cli("interpolate", gan, "--from-seed", "3", "--to-seed", "4", "--frames", "5", "--slerp", "--out", "w.npz")
    assert result.exit_code == 0, result.output
    arrays = np.load("w.npz")
    assert arrays["images"].shape == (5, 1, 8, 8) and arrays["images"].dtype == np.uint8
    z = torch.from_numpy(arrays["z"])
    assert torch.equal(z[0], model.latents(1, 3)[0]) and torch.equal(z[-1], model.latents(1, 4)[0])
    norms = z.norm(dim=1)
    assert torch.allclose(norms, torch.linspace(float(norms[0]), float(norms[-1]), 5), atol=1e-4)
    # the first and last frames are exactly the seeds' own samples
    from gantoolkit.data import to_uint8

    for frame, seed in ((0, 3), (-1, 4)):
        own = to_uint8(model.sample(1, seed=seed)[0]).numpy()[0].astype(int)
        assert np.abs(arrays["images"][frame].astype(int) - own).max() <= 1
    assert cli("interpolate", gan, "--frames", "6", "--out", "w.png").exit_code == 0
    strip = Image.open("w.png")
    assert strip.width > 5 * strip.height  # one row of six frames
    assert cli("interpolate", gan, "--frames", "4", "--out", "w.gif").exit_code == 0
    gif = Image.open("w.gif")
    assert gif.n_frames == 4 and gif.width >= 128
    bad = cli("interpolate", gan, "--frames", "4", "--out", "w.jpg")
    assert bad.exit_code != 0 and "error: --out must end in" in bad.output and "Traceback" not in bad.output


def test_arithmetic_command(cli, workdir):
    result = cli("arithmetic", workdir / "gan", "[1,2] - 3 + 4", "--out", "sum.npz")
    assert result.exit_code == 0, result.output
    assert "[1,2] - 3 + 4 = the last image" in result.output
    arrays = np.load("sum.npz")
    assert arrays["images"].shape == (4, 1, 8, 8) and arrays["z"].shape == (4, 16)
    bad = cli("arithmetic", workdir / "gan", "1 +", "--out", "sum.png")
    assert bad.exit_code == 2 and "error: cannot read the latent expression" in bad.output


# -- classifier-gradient editing -------------------------------------------------------------------------------------


def test_edit_changes_only_z(model, classifier):
    from gantoolkit.controllers.editing import edit_latents

    g_before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    c_before = {k: v.clone() for k, v in classifier.state_dict().items()}
    z = model.latents(12, seed=5)
    result = edit_latents(model, classifier, z, target=3, steps=8, step_size=2.0, keep_path=True)
    assert all(torch.equal(v, g_before[k]) for k, v in model.generator.state_dict().items())
    assert all(torch.equal(v, c_before[k]) for k, v in classifier.state_dict().items())
    assert all(p.grad is None for p in [*model.generator.parameters(), *classifier.parameters()])
    assert all(p.requires_grad for p in model.generator.parameters())  # restored after the edit
    assert torch.equal(result.z_before, z) and not torch.equal(result.z_after, z)
    assert result.target_prob.shape == (9, 12) and result.z_path is not None and result.z_path.shape == (9, 12, 16)
    assert torch.equal(result.z_path[0], z) and torch.equal(result.z_path[-1], result.z_after)
    # gradient ascent on the target logit: it rises (a 60-step generator responds weakly to z, so not by much)
    assert (result.logits_after[:, 3] - result.logits_before[:, 3]).mean() > 0.1
    assert result.target_prob[-1].mean() > result.target_prob[0].mean()
    with torch.no_grad():
        logits = classifier.logits(model.generate(result.z_after))
    assert torch.allclose(logits, result.logits_after, atol=1e-4)


def test_penalty_holds_the_other_logits(model, classifier):
    from gantoolkit.controllers.editing import edit_latents

    z = model.latents(16, seed=5)
    free, held = [], []
    for target in range(10):
        free.append(edit_latents(model, classifier, z, target, steps=8, step_size=2.0).other_logit_change().mean())
        held.append(edit_latents(model, classifier, z, target, steps=8, step_size=2.0, penalty=2.0)
                    .other_logit_change().mean())
    assert sum(held) < 0.6 * sum(free)


def test_edit_refuses_bad_settings(model, classifier):
    from gantoolkit.controllers.editing import edit_latents

    z = model.latents(2)
    cases = (({"target": 10}, "out of range"), ({"target": 1, "steps": -1}, "--steps"),
             ({"target": 1, "step_size": 0.0}, "--step-size"), ({"target": 1, "penalty": -1}, "--penalty"))
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            edit_latents(model, classifier, z, **kwargs)


def test_edit_command_npz_and_png(cli, workdir):
    gan, clf = workdir / "gan", workdir / "clf.safetensors"
    args = ["edit", gan, "--classifier", clf, "--target", "4", "--n", "6", "--steps", "5", "--seed", "2",
            "--step-size", "2"]
    result = cli(*args, "--penalty", "1", "--out", "edit.npz")
    assert result.exit_code == 0, result.output
    assert "target '4'" in result.output
    arrays = np.load("edit.npz")
    assert arrays["before"].shape == arrays["after"].shape == (6, 1, 8, 8) and arrays["before"].dtype == np.uint8
    assert arrays["z_before"].shape == arrays["z_after"].shape == (6, 16)
    assert arrays["target_prob"].shape == (6, 6) and int(arrays["target"]) == 4
    assert cli(*args, "--out", "edit.png").exit_code == 0
    picture = Image.open("edit.png")
    assert picture.width > 2.5 * picture.height  # two rows of six
    for extra, message in ((["--target", "four"], "no class 'four'"), (["--classifier", gan], "not a classifier")):
        bad = cli("edit", gan, "--classifier", clf, "--target", "4", *extra, "--out", "x.png")
        assert bad.exit_code == 2 and message in bad.output and "Traceback" not in bad.output


def test_classifier_train_command(cli):
    result = one_thread(cli, "classifier", "train", "--image-size", "8", "--epochs", "1", "--out", "c.safetensors")
    assert result.exit_code == 0, result.output
    assert "held-out accuracy" in result.output and "wrote c.safetensors" in result.output
    info = cli("classifier", "info", "c.safetensors")
    assert info.exit_code == 0 and '"backbone": "test_resnet"' in info.output
    bad = cli("classifier", "train", "--data", "toy:ring", "--out", "c2.safetensors")
    assert bad.exit_code == 2 and "holds vectors" in bad.output
