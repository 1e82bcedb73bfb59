"""Augmentation of what the critic sees (issue 16, item 3): the `augmentation` kind, `diffaug` and `ada`, in the
trainer, in checkpoints and on the command line."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from safetensors.torch import load_file

from gantoolkit import hookimpl
from gantoolkit.builtin.augment.ada import ADA, P_MAX, blit, colour
from gantoolkit.builtin.augment.diffaug import (
    DiffAugment,
    brightness,
    contrast,
    cutout_mask,
    random_cutout,
    random_translation,
    saturation,
    translate,
)
from gantoolkit.components import Augmentation
from gantoolkit.errors import ConfigError
from gantoolkit.options import inline_options
from gantoolkit.registry import use_registry
from gantoolkit.testing import ConformanceError, check_augmentation, plugin_registry
from tests.conftest import TINY_DCGAN

pytestmark = pytest.mark.usefixtures("one_thread")


def rng(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 6, c: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=rng(seed)) * 2 - 1


# -- diffaug's operations -------------------------------------------------------------------------------------------


def test_translation_moves_the_content_and_zero_pads():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 2, 3] = 1.0
    out = translate(x, torch.tensor([1]), torch.tensor([-1]))  # out[i, j] = x[i + 1, j - 1]
    assert out[0, 0, 1, 4] == 1 and out.sum() == 1
    ones = translate(torch.ones(1, 1, 8, 8), torch.tensor([2]), torch.tensor([0]))
    assert (ones[0, 0, 6:] == 0).all() and (ones[0, 0, :6] == 1).all()  # the uncovered rows are zero


def test_random_translation_shifts_each_image_by_at_most_an_eighth():
    x = images(16, size=16)
    out = random_translation(x, rng(3))
    shifts = []
    for b in range(len(x)):
        found = [(r, c) for r in range(-2, 3) for c in range(-2, 3)
                 if torch.equal(out[b], translate(x[b : b + 1], torch.tensor([r]), torch.tensor([c]))[0])]
        assert found, f"image {b} is not x shifted by up to 2 pixels"
        shifts.append(found[0])
    assert len(set(shifts)) > 1  # each image its own draw


def test_cutout_zeroes_one_clipped_square_of_half_the_side():
    mask = cutout_mask((1, 1, 8, 8), torch.tensor([-2]), torch.tensor([5]), (4, 4))
    assert mask[0, 0, :2, 5:].eq(0).all() and mask.eq(0).sum() == 2 * 3  # clipped at the top and the right
    out = random_cutout(torch.ones(32, 3, 8, 8), rng(1))
    for b in range(32):
        zero = out[b, 0] == 0
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert 4 <= int(zero.sum()) <= 16
        # the zeros fill the rectangle they span, in every channel
        assert int(zero.sum()) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert (out[b] == 0).all(0).eq(zero).all()


def test_colour_transforms_keep_the_references_ranges():
    flat = torch.full((64, 3, 4, 4), 0.25)
    shifted = brightness(flat, rng(0))
    delta = shifted - flat
    assert delta.amin() >= -0.5 and delta.amax() <= 0.5 and delta.std() > 0.1
    assert (delta == delta[:, :1, :1, :1]).all()  # one offset per image
    assert torch.equal(contrast(flat, rng(1)), flat)  # a flat image has no contrast to change
    grey = images(64, c=1).repeat(1, 3, 1, 1)
    assert torch.allclose(saturation(grey, rng(2)), grey)  # nor a grey one saturation
    x = images(64)
    for op, dims, low, high in ((saturation, (1,), 0.0, 2.0), (contrast, (1, 2, 3), 0.5, 1.5)):
        mean = x.mean(dim=dims, keepdim=True)
        away = (x - mean).abs() > 0.05
        ratio = (op(x, rng(3)) - mean)[away] / (x - mean)[away]  # the factor each image's distances were scaled by
        assert ratio.amin() >= low - 1e-4 and ratio.amax() <= high + 1e-4 and ratio.std() > 0.1, op.__name__


def test_diffaug_is_seeded_by_the_generator_it_is_given_only():
    aug, x = DiffAugment(), images()
    before = torch.get_rng_state()
    a, b, c = aug.augment(x, rng(5)), aug.augment(x, rng(5)), aug.augment(x, rng(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), before)


def test_diffaug_passes_gradients_to_its_input():
    x = images().requires_grad_(True)
    DiffAugment().augment(x, rng(0)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    y = torch.zeros(1, 1, 8, 8, requires_grad=True)
    translate(y, torch.tensor([1]), torch.tensor([0])).sum().backward()
    assert y.grad[0, 0, 0].eq(0).all() and y.grad[0, 0, 1:].eq(1).all()  # row 0 left the picture


def test_diffaug_policy_picks_the_operations():
    x = images()
    only = DiffAugment(policy="translation").augment(x, rng(0))
    assert torch.equal(only, random_translation(x, rng(0)))
    assert DiffAugment(policy="color,translation,cutout").policy == ("color", "translation", "cutout")
    for bad, words in (("nonsense", "unknown policy 'nonsense'"), ("", "names nothing"),
                       ("color,color", "color twice")):
        with pytest.raises(ConfigError, match=words):
            DiffAugment(policy=bad)


# -- ada --------------------------------------------------------------------------------------------------------


def test_ada_blit_flips_turns_and_translates_with_reflected_borders():
    x = images(1)
    none, one = torch.tensor([0.0]), torch.tensor([1.0])
    assert torch.equal(blit(x, none, none, none, none), x)
    assert torch.equal(blit(x, one, none, none, none), x.flip(3))
    assert torch.equal(blit(x, none, torch.tensor([2.0]), none, none), x.flip(2, 3))
    turned = blit(x, none, one, none, none)
    assert any(torch.equal(turned, torch.rot90(x, k, dims=(2, 3))) for k in (1, -1))
    moved = blit(x, none, none, one, none)  # one pixel to the right; column 0 reflects column 1
    assert torch.equal(moved[..., 1:], x[..., :-1]) and torch.equal(moved[..., 0], x[..., 1])
    down = blit(x, none, none, none, torch.tensor([-2.0]))  # two rows up; the last rows reflect
    assert torch.equal(down[..., :-2, :], x[..., 2:, :]) and torch.equal(down[..., -1, :], x[..., -3, :])


def test_ada_colour_is_the_references_matrix():
    x = images(2)
    out = colour(x, torch.tensor([0.1, 0.0]), torch.tensor([2.0, 1.0]), torch.tensor([1.0, 0.0]))
    assert torch.allclose(out[0], (x[0] + 0.1) * 2)
    assert torch.allclose(out[1], x[1].mean(0, keepdim=True).expand_as(x[1]))  # saturation 0: grey


def test_ada_at_p_zero_is_the_identity_and_at_high_p_transforms_every_op():
    x = images(32)
    assert torch.allclose(ADA(p=0).augment(x, rng(0)), x, atol=1e-6)  # (the colour matrix still runs, as there)
    out = ADA(p=P_MAX).augment(x, rng(0))
    assert out.shape == x.shape and (out - x).abs().flatten(1).amax(1).gt(0).all()
    for op in ("xflip", "rotate90", "xint", "brightness", "contrast", "saturation"):
        assert not torch.equal(ADA(p=P_MAX, ops=op).augment(x, rng(0)), x), op


def test_ada_p_rises_when_the_critic_is_sure_of_the_reals_and_falls_otherwise():
    ada = ADA(target=0.6, p=0.5, interval=2, kimg=1)  # p moves by 2 x 10 / 1000 per adjustment
    confident, unsure = torch.full((10,), 3.0), torch.tensor([1.0] * 7 + [-1.0] * 3)  # r_t 1 and 0.4
    ada.observe(confident)
    assert ada.p.item() == pytest.approx(0.5)  # between adjustments
    ada.observe(confident)
    assert ada.p.item() == pytest.approx(0.52)
    for _ in range(4):
        ada.observe(unsure)
    assert ada.p.item() == pytest.approx(0.48)
    for _ in range(200):
        ada.observe(confident)
    assert ada.p.item() == pytest.approx(P_MAX)  # [0, 1)
    for _ in range(400):
        ada.observe(-confident)
    assert ada.p.item() == 0
    fixed = ADA(p=0.3, adapt=False, interval=1)
    fixed.observe(confident)
    assert fixed.p.item() == pytest.approx(0.3)


def test_ada_ramp_follows_r3gans_cosine_from_zero_to_p_then_holds():
    import math

    ada = ADA(p=0.4, adapt=False, ramp=0.1, interval=1)  # 100 reals
    assert ada.p.item() == 0
    for seen in (25, 50, 75, 100, 125):
        ada.observe(torch.full((25,), -1.0))  # the scores' signs do not matter
        expected = 0.4 * 0.5 * (1 - math.cos(math.pi * min(seen / 100, 1)))
        assert ada.p.item() == pytest.approx(expected, abs=1e-6), seen
    again = ADA(p=0.4, adapt=False, ramp=0.1, interval=1)
    half = ADA(p=0.4, adapt=False, ramp=0.1, interval=1)
    half.observe(torch.ones(50))
    again.load_state_dict({k: v.clone() for k, v in half.state_dict().items()})  # resumed mid-ramp
    again.observe(torch.ones(25))
    assert again.p.item() == pytest.approx(0.4 * 0.5 * (1 - math.cos(math.pi * 0.75)), abs=1e-6)
    before = {k: v for k, v in half.state_dict().items() if k != "images"}  # a checkpoint from before the ramp
    old = ADA(p=0.4, adapt=False, interval=1)
    old.load_state_dict(before)
    assert old.images.item() == 0


def test_ada_adjusts_from_every_processes_reals():
    ada = ADA(p=0.5, interval=1, kimg=1)
    ada.observe(torch.full((10,), -1.0), total=lambda t: t + torch.tensor([50.0, 50.0]))  # others: all "real"
    assert ada.p.item() == pytest.approx(0.5 + 60 / 1000)  # r_t = 40 / 60; this process's alone would lower it


def test_ada_state_round_trips_mid_interval():
    ada = ADA(p=0.5, interval=3, kimg=1)
    for _ in range(4):
        ada.observe(torch.ones(8))
    again = ADA(p=0.5, interval=3, kimg=1)
    again.load_state_dict({k: v.clone() for k, v in ada.state_dict().items()})
    for a in (ada, again):
        a.observe(torch.ones(8))
        a.observe(torch.ones(8))
    assert ada.p.item() == again.p.item() == pytest.approx(0.5 + 2 * 24 / 1000)
    assert ada.scalars()["ada_p"].item() == ada.p.item()


def test_ada_refuses_bad_options_and_data():
    from gantoolkit.testing import tiny_info

    for options, words in (({"target": 1.5}, "target"), ({"target": 0}, "target"), ({"p": 1.0}, "p is"),
                           ({"interval": 0}, "interval"), ({"kimg": -1}, "kimg"), ({"ops": "xflip,spin"}, "spin"),
                           ({"ramp": -1, "adapt": False, "p": 0.3}, "ramp is"), ({"ramp": 10, "p": 0.3}, "choose one"),
                           ({"ramp": 10, "adapt": False}, "p is 0")):
        with pytest.raises(ConfigError, match=words):
            ADA(**options)
    with pytest.raises(ConfigError, match="square"):
        ADA().setup(tiny_info((3, 8, 16)))
    ADA(ops="xflip,xint").setup(tiny_info((3, 8, 16)))
    with pytest.raises(ConfigError, match="images only"):
        ADA().setup(tiny_info((2,)))


# -- the conformance kit ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["none", "diffaug", "ada"])
def test_built_in_augmentations_pass_the_kit(name):
    check_augmentation(name)


def test_the_kit_finds_the_global_rng_and_state_left_out():
    class GlobalNoise(Augmentation):
        def augment(self, x, generator):
            return x + torch.randn_like(x)

    with pytest.raises(ConformanceError, match=r"global RNG.*\[rule: augment-seeded\]"):
        check_augmentation(GlobalNoise, train=False)

    class Forgetful(ADA):  # p is not saved
        def state_dict(self):
            return {}

    with pytest.raises(ConformanceError, match=r"\[rule: augment-state\]"):
        check_augmentation(Forgetful, train=False)

    class Detached(Augmentation):
        def augment(self, x, generator):
            return x.detach() * 0 + x.detach()

    with pytest.raises(ConformanceError, match=r"\[rule: augment-gradients\]"):
        check_augmentation(Detached, train=False)

    class Vague(Augmentation):
        reads_score_sign = "yes"

        def augment(self, x, generator):
            return x

    with pytest.raises(ConformanceError, match=r"\[rule: augment-sign-flag\]"):
        check_augmentation(Vague, train=False)


# -- in training ------------------------------------------------------------------------------------------------


def train_args(*extra: str) -> list[str]:
    return ["train", *TINY_DCGAN, "--image-size", "8", "--log-every", "2", "--lr-decay", "0", "--ema", "0",
            *extra]


ADA_FAST = ("--augment", "ada", "--augment-opt", "p=0.5", "--augment-opt", "interval=1", "--augment-opt", "kimg=0.05")
ADA_RAMP = ("--augment", "ada:adapt=false,p=0.6,ramp=0.2")


@pytest.mark.parametrize("augment", [("--augment", "diffaug"), ADA_FAST, ADA_RAMP], ids=["diffaug", "ada", "ada-ramp"])
def test_resume_with_augmentation_equals_uninterrupted_training_bit_for_bit(cli, augment):
    common = ("--loss", "bce", "--checkpoint-every", "3", *augment)
    assert cli(*train_args(*common, "--steps", "6", "--out", "straight")).exit_code == 0
    assert cli(*train_args(*common, "--steps", "3", "--out", "split")).exit_code == 0
    result = cli("train", "--resume", "split", "--steps", "6")
    assert result.exit_code == 0, result.output
    straight, split = (load_file(f"{run}/checkpoints/step-00000006.safetensors") for run in ("straight", "split"))
    assert straight.keys() == split.keys() and all(torch.equal(straight[k], split[k]) for k in straight)
    plain = ("--loss", "bce", "--checkpoint-every", "3", "--steps", "6", "--out", "plain")
    assert cli(*train_args(*plain)).exit_code == 0  # augmentation changes the run
    unaugmented = load_file("plain/checkpoints/step-00000006.safetensors")
    assert not all(torch.equal(unaugmented[k], straight[k]) for k in straight if k.startswith("generator."))


def test_ada_p_is_logged_checkpointed_and_restored(cli):
    from gantoolkit.data.loading import load_dataset
    from gantoolkit.files.checkpoint import load_checkpoint
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry
    from gantoolkit.training.trainer import Trainer

    assert cli(*train_args("--loss", "bce", "--steps", "3", "--checkpoint-every", "3", *ADA_FAST,
                           "--out", "run")).exit_code == 0
    lines = [json.loads(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 3] and all(0 <= line["ada_p"] <= P_MAX for line in lines)
    ckpt = load_checkpoint(Path("run/checkpoints/step-00000003.safetensors"))
    p = ckpt.tensors["augment.p"]
    assert p.shape == () and p.item() != pytest.approx(0.5)  # three moves of 16 / 50 from where it started
    assert lines[-1]["ada_p"] == pytest.approx(p.item(), abs=1e-6)  # the last step's p, logged
    assert ckpt.config.augment.options == {"target": 0.6, "p": 0.5, "interval": 1, "kimg": 0.05, "adapt": True,
                                           "ramp": 0.0, "ops": "xflip,rotate90,xint,brightness,contrast,saturation",
                                           "xint_max": 0.125}  # every option recorded

    dataset = load_dataset(ckpt.config, get_registry())
    trainer = Trainer(build_models(ckpt.config, ckpt.data, get_registry()), dataset, Path("run"),
                      torch.device("cpu"))
    trainer.load_state(ckpt)
    assert trainer.models.augment.p.item() == p.item()


def test_penalties_and_the_critic_see_augmented_reals_and_sampling_sees_nothing(cli):
    from gantoolkit.data.loading import load_dataset
    from gantoolkit.files.checkpoint import load_checkpoint
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry
    from gantoolkit.sampling.generator import load_generator
    from gantoolkit.training.trainer import Trainer

    assert cli(*train_args("--loss", "bce", "--loss-opt", "r1=1", "--steps", "2", "--augment", "diffaug",
                           "--out", "run")).exit_code == 0
    ckpt = load_checkpoint(Path("run/checkpoints/step-00000002.safetensors"))
    trainer = Trainer(build_models(ckpt.config, ckpt.data, get_registry()), load_dataset(ckpt.config, get_registry()),
                      Path("run"), torch.device("cpu"))
    seen: dict[str, torch.Tensor] = {}
    batches, penalty = trainer.batches.next, trainer.loss.penalty
    trainer.batches.next = lambda: (seen.setdefault("batch", batches()[0]), None)  # type: ignore[method-assign]
    trainer.loss.penalty = lambda ctx: (seen.setdefault("penalised", ctx.real), penalty(ctx))[1]  # type: ignore
    trainer.train_step()
    assert seen["penalised"].shape == seen["batch"].shape and not torch.equal(seen["penalised"], seen["batch"])
    model = load_generator(Path("run"))
    assert model.sample(4, seed=1)[0].shape == (4, 1, 8, 8)
    assert build_models(ckpt.config, ckpt.data, get_registry(), augment=False).augment is None


# -- the command line -------------------------------------------------------------------------------------------


def test_list_augmentations(cli):
    result = cli("list", "augmentations", "--options")
    assert result.exit_code == 0
    for words in ("none", "diffaug", "ada", "policy", "target"):
        assert words in result.output


def test_inline_options_keep_commas_inside_a_value():
    assert inline_options("diffaug:policy=color,translation,cutout=0.25", "--augment") == (
        "diffaug", ["policy=color,translation", "cutout=0.25"])
    assert inline_options("ada", "--augment") == ("ada", [])
    with pytest.raises(ConfigError, match="NAME"):
        inline_options("ada:0.6", "--augment")


IMAGES = (*TINY_DCGAN, "--image-size", "8")


@pytest.mark.parametrize("args, words", [
    ((*IMAGES, "--augment", "diffaug:policy=nonsense"), "unknown policy 'nonsense'"),
    ((*IMAGES, "--augment", "ada", "--augment-opt", "target=1.5"), "target"),
    ((*IMAGES, "--augment", "ada:target=0"), "target"),
    ((*IMAGES, "--augment", "diffaug", "--augment-opt", "strength=2"), "no option 'strength'"),
    ((*IMAGES, "--augment", "difaug"), "unknown augmentation 'difaug'"),
    (("--data", "toy:ring", "--arch", "mlp", "--augment", "diffaug"), "images only"),
])
def test_bad_augmentation_is_one_line_and_creates_nothing(cli, args, words):
    result = cli("train", "--loss", "bce", "--steps", "2", *args, "--out", "r")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.output, result.output
    assert not Path("r").exists()


def test_augment_is_fixed_on_resume(cli):
    assert cli(*train_args("--steps", "2", "--augment", "diffaug", "--out", "run")).exit_code == 0
    result = cli("train", "--resume", "run", "--steps", "4", "--augment", "ada")
    assert result.exit_code == 2 and "--augment cannot change when resuming" in result.output


class Flip(Augmentation):
    calls = 0

    def augment(self, x, generator):
        Flip.calls += 1
        return x.flip(3)


def test_a_plugin_augmentation_trains_through_the_registry(cli):
    plugin = types.ModuleType("flip_plugin")

    @hookimpl
    def register_augmentations(register):
        register("flip", Flip, summary="mirror every batch")

    plugin.register_augmentations = register_augmentations  # type: ignore[attr-defined]
    Flip.calls = 0
    with use_registry(plugin_registry(plugin)):
        result = cli(*train_args("--steps", "2", "--n-critic", "2", "--augment", "flip", "--out", "run"))
    assert result.exit_code == 0, result.output
    assert Flip.calls == 2 * (2 * 2 + 1)  # per step: reals and fakes of each critic step, the generator's fakes


class Recorder(Augmentation):
    """Records the scores the trainer hands `observe` (the identity otherwise)."""

    reads_score_sign = True
    seen: ClassVar[list[torch.Tensor]] = []

    def augment(self, x, generator):
        return x

    def observe(self, real_scores, total=None):
        Recorder.seen.append(real_scores)


@pytest.mark.parametrize("loss, midpoint", [("bce", 0.0), ("lsgan", 0.5), ("wgan-gp", 0.0), ("rpgan", 0.0)])
def test_observe_sees_the_real_scores_centred_on_the_losss_midpoint(loss, midpoint):
    """ADA's r_t = E[sign D(real)] reads "real" above the loss's midpoint: LSGAN codes reals 1 and fakes 0, so its
    scores reach the augmentation minus 0.5; scores without an origin (wgan-gp, rpgan) reach it raw."""
    from gantoolkit.registry import get_registry
    from gantoolkit.training.trainer import Trainer

    Recorder.seen = []
    trainer = types.SimpleNamespace(models=types.SimpleNamespace(augment=Recorder()),
                                    procs=types.SimpleNamespace(active=False),
                                    loss=get_registry().create("loss", loss, {}))
    scores = torch.tensor([-1.0, 0.25, 0.75, 2.0])
    Trainer._observe(trainer, scores)  # type: ignore[arg-type]
    torch.testing.assert_close(Recorder.seen[0], scores - midpoint)
    ada = ADA(p=0.5, interval=1, kimg=0.004)  # reals scored 0.25: "real" in logits, below LSGAN's midpoint
    trainer.models.augment = ada
    Trainer._observe(trainer, torch.full((4,), 0.25))
    assert (ada.p.item() < 0.5) == (loss == "lsgan")  # r_t = -1 for LSGAN (p falls), +1 otherwise (p rises)


@pytest.mark.parametrize("loss, augment, noted", [
    ("wgan-gp", ("--augment", "ada"), True),
    ("rpgan", ("--augment", "ada"), True),
    ("bce", ("--augment", "ada"), False),
    ("lsgan", ("--augment", "ada"), False),
    ("wgan-gp", ("--augment", "ada:adapt=false,p=0.3"), False),
    ("wgan-gp", ("--augment", "diffaug"), False),
])
def test_the_banner_says_when_adas_sign_means_nothing_for_the_loss(cli, loss, augment, noted):
    result = cli(*train_args("--loss", loss, "--steps", "1", *augment, "--out", "run"))
    assert result.exit_code == 0, result.output
    note = "adapts from the sign of the critic's real scores"
    assert (note in result.output) == noted, result.output
    if noted:
        assert f"loss {loss!r}" in result.output and "adapt=false" in result.output


@pytest.mark.process
def test_two_processes_share_adas_p_and_resume_bit_for_bit(tmp_path):
    """ADA on 2 gloo processes: p adapts from both processes' reals (the same p on each), and a run of 2 steps resumed
    to 4 on 2 processes is bit for bit the straight 4-step run."""
    import os
    import subprocess
    import sys

    gantool = [sys.executable, "-c", "from gantoolkit.cli import main; main()"]
    env = {**os.environ, "GANTOOL_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}
    recipe = [*TINY_DCGAN, "--image-size", "8", "--loss", "bce", "--ema", "0", "--lr-decay", "0", "--device", "cpu",
              "--log-every", "1", "--checkpoint-every", "2", "--nproc-per-node", "2", *ADA_FAST]

    def train(*args: str) -> None:
        done = subprocess.run([*gantool, "train", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr

    train(*recipe, "--steps", "4", "--out", "straight")
    train(*recipe, "--steps", "2", "--out", "split")
    train("--resume", "split", "--steps", "4", "--nproc-per-node", "2")
    straight, split = (load_file(tmp_path / run / "checkpoints" / "step-00000004.safetensors")
                       for run in ("straight", "split"))
    assert straight.keys() == split.keys() and [k for k in straight if not torch.equal(straight[k], split[k])] == []
    assert straight["augment.p"].item() != pytest.approx(0.5)
    logged = [json.loads(line)["ada_p"] for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 4 and logged[-1] == pytest.approx(straight["augment.p"].item(), abs=1e-6)
