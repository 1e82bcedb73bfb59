"""Stacked digits (issue 16, item 4): the StackedMNIST protocol on scikit-learn's digits. The dataset stacks three
independently drawn digits (1,000 modes, the 3-digit number as label), deterministically from its seed; the
`stacked-modes` and `stacked-kl` metrics read each channel with the cached digits classifier, find ~all 1,000
modes and a KL near 0 in real stacked digits (reported beside every score as the floor), 1 mode and log 1,000
for a collapsed set, and work through `gantool evaluate` on a tiny run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gantoolkit.builtin.datasets.stacked import EVAL_SAMPLES, StackedDigits, digits_at
from gantoolkit.builtin.metrics.stacked import StackedKL, StackedModes
from gantoolkit.data import DataRequest, Dataset, to_model_space
from gantoolkit.evaluation import EvalContext
from gantoolkit.testing import check_dataset, tiny_dataset
from tests.conftest import TINY_DCGAN

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 8  # the digits' own size: the smallest classifier to train
#: samples for the floor's test: half the protocol's 26,000 (reading 3 channels of each costs CPU time)
HALF = 13_000


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One digits classifier for the module (trained by the first metric that needs it)."""
    return tmp_path_factory.mktemp("gantool-cache")


def load(size: int = SIZE, **options) -> Dataset:
    return StackedDigits(**options).load(DataRequest(image_size=size))


def test_three_independent_digits_per_image_labelled_by_their_three_digit_number():
    data = load(16)
    assert data.data.dtype == torch.uint8 and data.data.shape == (26_000, 3, 16, 16)
    assert data.info.shape == (3, 16, 16) and data.info.num_classes == 1000 and data.info.class_names[42] == "042"
    assert data.labels is not None and data.labels.dtype == torch.int64
    assert data.labels.min() == 0 and data.labels.max() == 999 and len(data.labels.unique()) == 1000
    digits = digits_at(16)
    assert digits.labels is not None
    digit_of = {bytes(image.numpy()): int(label) for image, label in zip(digits.data, digits.labels, strict=True)}
    for image, label in zip(data.data[:300], data.labels[:300], strict=True):
        channels = [digit_of[bytes(image[c:c + 1].numpy())] for c in range(3)]  # each channel is a digit image
        assert channels[0] * 100 + channels[1] * 10 + channels[2] == label
    # the channels are drawn independently: the first two channels' digits are uncorrelated
    hundreds, tens = data.labels // 100, data.labels // 10 % 10
    assert abs(torch.corrcoef(torch.stack([hundreds, tens]).double())[0, 1]) < 0.03
    counts = torch.bincount(data.labels, minlength=1000)
    assert counts.min() > 0 and counts.max() < 3 * 26  # every mode, none far above its share of 26


def test_deterministic_from_its_seed_with_options_for_size_count_and_labels():
    first, again, other = load(), load(), load(seed=1)
    assert torch.equal(first.data, again.data) and torch.equal(first.labels, again.labels)
    assert not torch.equal(first.data, other.data)
    assert load(n=100).data.shape == (100, 3, SIZE, SIZE)
    unlabelled = load(labels=False)
    assert unlabelled.labels is None and unlabelled.info.num_classes == 0 and torch.equal(unlabelled.data, first.data)
    assert first.info.extra["eval_samples"] == EVAL_SAMPLES == 26_000


def test_passes_the_conformance_kit():
    check_dataset("stacked-digits", {"n": 2000})


def context(real: Dataset, images: torch.Tensor, cache_dir: Path, n: int = EVAL_SAMPLES) -> EvalContext:
    """`images` (model space) as the generated samples."""
    return EvalContext(real, lambda k, seed: (images[:k], None), n=n, seed=0, cache_dir=cache_dir)


def scores(ctx: EvalContext) -> dict:
    return {**StackedModes().compute(ctx), **StackedKL().compute(ctx)}


def test_real_stacked_digits_cover_every_mode_with_a_kl_near_zero_the_floor(cache_dir):
    real = load()
    other = load(seed=1)  # other real stacked digits as the "samples"
    ctx = context(real, to_model_space(other.data, other.info), cache_dir, n=HALF)
    got = scores(ctx)
    assert got["stacked_modes"] >= 990 and got["stacked_modes_real"] >= 990
    # a uniform histogram of n draws over K modes has a KL of about (K - 1) / 2n: 0.038 here, 0.019 at 26,000
    assert 0 <= got["stacked_kl"] < 0.06 and 0 <= got["stacked_kl_real"] < 0.06
    assert "digits at 8x8" in ctx.notes["digit_classifier"]
    assert list((cache_dir / "classifiers").glob("*.safetensors"))  # cached like the other metrics' classifier


def test_a_collapsed_set_is_one_mode_and_log_1000(cache_dir):
    real = load(n=2000)
    one = to_model_space(real.data[:1], real.info).expand(2000, -1, -1, -1)
    got = scores(context(real, one, cache_dir, n=2000))
    assert got["stacked_modes"] == 1 and got["stacked_kl"] == pytest.approx(math.log(1000), abs=1e-9)
    assert got["stacked_modes_real"] > 800  # the floor is the real data's, whatever the samples (2,000 of them)


def test_the_floor_is_computed_once_then_read_from_the_cache(cache_dir, monkeypatch):
    import gantoolkit.builtin.metrics.stacked as stacked

    real = load(n=600)
    samples = to_model_space(real.data[:300], real.info)
    calls = []
    counted = stacked.stacked_modes
    monkeypatch.setattr(stacked, "stacked_modes", lambda images, *a: calls.append(len(images)) or counted(images, *a))
    first = scores(context(real, samples, cache_dir, n=300))
    assert calls == [300, 300]  # the samples, then the real images of the floor
    again = scores(context(real, samples, cache_dir, n=300))
    assert again == first and calls == [300, 300, 300]  # only the samples: the floor was cached
    floors = list((cache_dir / "stacked-floor").glob("*.json"))
    for path in floors:
        path.write_text("{not json")
    assert scores(context(real, samples, cache_dir, n=300)) == first and len(calls) == 5  # unreadable: computed again
    scores(context(real, samples, cache_dir, n=200))
    assert len(calls) == 7 and len(list((cache_dir / "stacked-floor").glob("*.json"))) == len(floors) + 1


def test_the_metrics_apply_only_to_stacked_digits(cache_dir):
    digits = tiny_dataset((1, 8, 8))
    reason = StackedModes().why_not(context(digits, digits.data.float(), cache_dir))
    assert reason is not None and "stacked-digits" in reason
    assert StackedKL().why_not(context(load(n=10), torch.zeros(1, 3, 8, 8), cache_dir)) is None


def test_gantool_evaluate_a_tiny_run_by_default_with_the_protocols_26000_samples(cli, cache_dir, monkeypatch):
    monkeypatch.setenv("GANTOOL_CACHE", str(cache_dir))
    result = cli("train", *TINY_DCGAN, "--data", "stacked-digits", "--image-size", str(SIZE), "--loss", "bce",
                 "--steps", "2", "--out", "run")
    assert result.exit_code == 0, result.output
    result = cli("evaluate", "run", "--metrics", "stacked_modes,stacked_kl", "--n", "3000", "--out", "report.json")
    assert result.exit_code == 0, result.output
    report = json.loads(Path("report.json").read_text())
    assert report["meta"]["n"] == 3000 and report["meta"]["real"] == 3000
    assert 1 <= report["stacked_modes"] <= 1000 and report["stacked_kl"] >= 0
    assert report["stacked_modes_real"] > 900 and report["stacked_kl_real"] < 0.5
    assert report["stacked_modes"] < report["stacked_modes_real"]  # two steps of training have not learnt them all
    assert "digits at 8x8" in report["meta"]["digit_classifier"]
    for key in ("stacked_modes", "stacked_kl", "stacked_modes_real", "stacked_kl_real"):
        assert key in result.output
    # without --n, the data's protocol: 26,000 samples (a cheap metric shows it)
    result = cli("evaluate", "run", "--metrics", "fd", "--features", "raw", "--out", "fd.json")
    assert result.exit_code == 0, result.output
    meta = json.loads(Path("fd.json").read_text())["meta"]
    assert meta["n"] == 26_000 and meta["real"] == 26_000


def test_a_conditional_run_draws_sample_grids_of_at_most_32_columns(cli):
    """One column per class would make a 1,000-column grid; the grid shows the first MAX_GRID_CLASSES classes."""
    from PIL import Image

    from gantoolkit.training.trainer import MAX_GRID_CLASSES

    result = cli("train", *TINY_DCGAN, "--data", "stacked-digits", "--data-opt", "n=300", "--image-size", str(SIZE),
                 "--loss", "bce", "--cond", "onehot", "--steps", "1", "--sample-every", "1", "--out", "run")
    assert result.exit_code == 0, result.output
    grid = Image.open(Path("run") / "samples" / "step-00000001.png")
    assert grid.width < (MAX_GRID_CLASSES + 1) * (SIZE + 2) + 2 < 1000 * SIZE
    assert grid.width > (MAX_GRID_CLASSES - 1) * SIZE  # still one column per class for the first 32
