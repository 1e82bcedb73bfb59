"""Mode collapse on stacked digits, by the StackedMNIST protocol of VEEGAN, PacGAN and R3GAN.

Each channel of a generated sample is read by the digits classifier (the automatic classifier of the `digits`
dataset at the samples' size, the one `gantool evaluate` trains and caches for digits runs), which makes each
sample one of 1,000 modes (the 3-digit number). `stacked_modes` counts the modes found at least once, and
`stacked_kl` is PacGAN's reverse KL, KL(p_gen ‖ uniform) = Σ p log(1,000 p) in nats, of their histogram (0 for a
perfectly even spread, log 1,000 = 6.91 for a single mode). The protocol draws 26,000 samples (the data's default
`--n`). Each key comes with its floor, the same score of as many real stacked images (`*_real`): what a perfect
generator would get from this sample count and classifier (cached: see `real_floor`).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

import torch

from gantoolkit.builtin.metrics.features import FEATURE_BATCH, auto_classifier, cache_key
from gantoolkit.builtin.metrics.labels import class_histogram_scores
from gantoolkit.evaluation import EvalContext, Metric
from gantoolkit.files.outputs import atomic_write
from gantoolkit.files.reading import open_regular

if TYPE_CHECKING:
    from gantoolkit.classifiers import Classifier

#: bump when the floor's computation changes, so stale cache entries are not used
FLOOR_VERSION = 1


def why_not_stacked(ctx: EvalContext) -> str | None:
    if not ctx.info.is_image or not isinstance(ctx.info.extra.get("stacked"), dict):
        return "it needs stacked digits (--data stacked-digits)"
    return None


def digit_classifier(ctx: EvalContext) -> Classifier:
    """The digits' automatic classifier at the stacked images' size (trained once, cached like any other)."""

    def make() -> Classifier:
        from gantoolkit.builtin.datasets.stacked import digits_at

        size = int(ctx.info.shape[-1])
        notes: dict[str, Any] = {}
        model = auto_classifier(digits_at(size), ctx.cache_root(), ctx.device, notes)
        ctx.notes["digit_classifier"] = f"digits at {size}x{size}: {notes['classifier']}"
        return model.eval()

    return ctx.memo("digit_classifier", make)


@torch.no_grad()
def stacked_modes(images: torch.Tensor, classifier: Classifier, device: torch.device) -> torch.Tensor:
    """The mode of each model-space stacked image (N x C x H x W): its channels' digits read as one number, the
    first channel the most significant digit."""
    channels = images.shape[1]
    digits = []
    for c in range(channels):
        parts = [classifier.logits(images[i:i + FEATURE_BATCH, c:c + 1].to(device)).argmax(1).cpu()
                 for i in range(0, len(images), FEATURE_BATCH)]
        digits.append(torch.cat(parts))
    place = torch.tensor([10 ** (channels - 1 - c) for c in range(channels)])
    return (torch.stack(digits, 1) * place).sum(1)


def mode_scores(modes: torch.Tensor, num_modes: int) -> tuple[int, float]:
    """Modes found at least once, and KL(histogram ‖ uniform over `num_modes`) in nats."""
    scores = class_histogram_scores(modes, num_modes)
    return int(scores["classes"]), float(scores["class_kl"])


def real_floor(ctx: EvalContext, model: Classifier, num_modes: int) -> tuple[int, float]:
    """The scores of the context's real subset: computed once for the same real images, seed and classifier, then
    read from the cache (`cache_root()/stacked-floor/KEY.json`), as reading 3 channels of 26,000 images takes a
    CPU-minute."""
    images = ctx.real_subset()[0]
    weights = hashlib.sha256()
    for tensor in model.state_dict().values():
        weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    key = {"version": FLOOR_VERSION, "data": cache_key(ctx.real), "n": len(images), "seed": ctx.seed,
           "classifier": weights.hexdigest(), "modes": num_modes}
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    path = ctx.cache_root() / "stacked-floor" / f"{name}.json"
    try:
        with open_regular(path) as fh:  # never a FIFO or a device
            saved = json.loads(fh.read(4096))
        modes, kl = saved["modes"], saved["kl"]
        if isinstance(modes, int) and 0 < modes <= num_modes and isinstance(kl, float) and 0 <= kl < math.inf:
            return modes, kl
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not cached yet (or unreadable): computed again
    modes, kl = mode_scores(stacked_modes(images, model, ctx.device), num_modes)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"modes": modes, "kl": kl}).encode())
    return modes, kl


def _scores(ctx: EvalContext) -> dict[str, float | int]:
    def make() -> dict[str, float | int]:
        num_modes = int(ctx.info.extra["stacked"].get("modes", 1000))
        model = digit_classifier(ctx)
        modes, kl = mode_scores(stacked_modes(ctx.fake()[0], model, ctx.device), num_modes)
        real_modes, real_kl = real_floor(ctx, model, num_modes)
        return {"stacked_modes": modes, "stacked_kl": kl, "stacked_modes_real": real_modes, "stacked_kl_real": real_kl}

    return ctx.memo("stacked", make)


class _StackedMetric(Metric):
    def why_not(self, ctx: EvalContext) -> str | None:
        return why_not_stacked(ctx)

    def compute(self, ctx: EvalContext) -> dict[str, float | int | None]:
        scores = _scores(ctx)
        return {key: scores[key] for key in self.keys}


class StackedModes(_StackedMetric):
    """Modes (of 1,000) among the samples, and among as many real stacked images (the floor)."""

    keys = ("stacked_modes", "stacked_modes_real")


class StackedKL(_StackedMetric):
    """KL(mode histogram ‖ uniform) of the samples, and of as many real stacked images (the floor)."""

    keys = ("stacked_kl", "stacked_kl_real")
