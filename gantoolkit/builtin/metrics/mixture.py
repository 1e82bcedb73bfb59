"""Mode collapse on 2-D Gaussian mixtures, by the VEEGAN / PacGAN protocol.

A sample is high quality when it lies within `threshold` standard deviations of its nearest mode; a mode is
captured when at least one high-quality sample is nearest to it; the reverse KL is KL(p ‖ uniform) of the
histogram of the high-quality samples' nearest modes.
"""

from __future__ import annotations

import math

import torch

from gantoolkit.evaluation import EvalContext, Metric


def mixture_scores(points: torch.Tensor, modes: torch.Tensor, std: float, threshold: float = 3.0) -> dict[str, float]:
    """`modes` captured (a count), `hq` (share of high-quality samples) and `rkl` (nan without any)."""
    points, modes = points.detach().double().cpu(), modes.double().cpu()
    distance, nearest = torch.cdist(points, modes).min(dim=1)
    good = distance < threshold * std
    counts = torch.bincount(nearest[good], minlength=len(modes)).double()
    total = counts.sum()
    if total > 0:
        p = counts[counts > 0] / total
        rkl = float((p * (p * len(modes)).log()).sum())
    else:
        rkl = math.nan
    return {"modes": int((counts > 0).sum()), "hq": float(good.double().mean()), "rkl": rkl}


def why_not_mixture(ctx: EvalContext) -> str | None:
    extra = ctx.info.extra
    if "modes" not in extra or "std" not in extra:
        return "it needs a 2-D Gaussian mixture with known modes (toy:ring, toy:grid)"
    return None


def _scores(ctx: EvalContext) -> dict[str, float]:
    extra = ctx.info.extra
    modes = torch.tensor(extra["modes"], dtype=torch.float64)
    return ctx.memo("mixture", lambda: mixture_scores(ctx.fake()[0], modes, float(extra["std"])))


class _MixtureMetric(Metric):
    def why_not(self, ctx: EvalContext) -> str | None:
        return why_not_mixture(ctx)

    def compute(self, ctx: EvalContext) -> dict[str, float | int | None]:
        return {key: _scores(ctx)[key] for key in self.keys}


class ModesCaptured(_MixtureMetric):
    """Modes with at least one high-quality sample nearest to them."""

    keys = ("modes",)


class HighQuality(_MixtureMetric):
    """Share of samples within 3 standard deviations of their nearest mode."""

    keys = ("hq",)


class ReverseKL(_MixtureMetric):
    """KL(p ‖ uniform) of the high-quality samples' nearest-mode histogram (undefined without any)."""

    keys = ("rkl",)


def nearest_mode(points: torch.Tensor, modes: list) -> torch.Tensor:
    """The index of each point's nearest mode (how a mixture's points are classified)."""
    return torch.cdist(points.double(), torch.tensor(modes, dtype=torch.float64)).argmin(dim=1)
