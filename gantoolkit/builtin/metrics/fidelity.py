"""Distribution metrics in a feature space: Fréchet distance and KID (through torchmetrics), precision, recall,
density and coverage (chunked k-NN, see `distances`)."""

from __future__ import annotations

import torch
from torch import nn

from gantoolkit.builtin.metrics.distances import prdc
from gantoolkit.builtin.metrics.features import feature_extractor, features_of, why_no_features
from gantoolkit.errors import ConfigError
from gantoolkit.evaluation import EvalContext, Metric, MetricError

#: KID as torch-fidelity computes it: 100 subsets of 1,000
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


class Precomputed(nn.Module):
    """Hands torchmetrics features that were already extracted (so every metric shares one extraction)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class _FeatureMetric(Metric):
    def why_not(self, ctx: EvalContext) -> str | None:
        return why_no_features(ctx)

    @staticmethod
    def both(ctx: EvalContext, minimum: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        real, fake = features_of(ctx, "real"), features_of(ctx, "fake")
        if min(len(real), len(fake)) < minimum:
            raise MetricError(f"{min(len(real), len(fake))} samples are too few", f"use at least {minimum} (--n)")
        return real, fake


class FrechetDistance(_FeatureMetric):
    """‖μ₁−μ₂‖² + Tr(C₁ + C₂ − 2(C₁C₂)^½) of Gaussians fitted to real and generated features (torchmetrics FID)."""

    keys = ("fd",)

    def compute(self, ctx: EvalContext) -> dict[str, float | int | None]:
        from torchmetrics.image.fid import FrechetInceptionDistance

        real, fake = self.both(ctx)
        fid = FrechetInceptionDistance(feature=Precomputed(feature_extractor(ctx).num_features))
        fid.update(real.double(), real=True)
        fid.update(fake.double(), real=False)
        return {"fd": float(fid.compute())}


class KernelDistance(_FeatureMetric):
    """Unbiased MMD² with the kernel (xᵀy/d + 1)³, mean and deviation over subsets (torchmetrics KID)."""

    keys = ("kid", "kid_std")

    def __init__(self, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE) -> None:
        if subsets < 1 or subset_size < 2:
            raise ConfigError(f"kid needs subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
        self.subsets, self.subset_size = subsets, subset_size

    def compute(self, ctx: EvalContext) -> dict[str, float | int | None]:
        import warnings

        from torchmetrics.image.kid import KernelInceptionDistance

        real, fake = self.both(ctx, minimum=3)
        size = min(self.subset_size, len(real), len(fake))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "saves all features in a buffer": we mean it to
            kid = KernelInceptionDistance(feature=Precomputed(real.shape[1]), subsets=self.subsets,
                                          subset_size=size)
        kid.update(real.double(), real=True)
        kid.update(fake.double(), real=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            mean, std = kid.compute()
        return {"kid": float(mean), "kid_std": float(std)}


def _prdc(ctx: EvalContext) -> dict[str, float]:
    def make() -> dict[str, float]:
        real, fake = _FeatureMetric.both(ctx, minimum=6)
        return prdc(real, fake, k_pr=3, k_dc=5)

    return ctx.memo("prdc", make)


class _Manifold(_FeatureMetric):
    def compute(self, ctx: EvalContext) -> dict[str, float | int | None]:
        return {key: _prdc(ctx)[key] for key in self.keys}


class Precision(_Manifold):
    """Share of generated samples inside the real manifold (k = 3 balls)."""

    keys = ("precision",)


class Recall(_Manifold):
    """Share of real samples inside the generated manifold (k = 3 balls)."""

    keys = ("recall",)


class Density(_Manifold):
    """How many real k = 5 balls contain a generated sample, on average, divided by k (≈ 1 for a match)."""

    keys = ("density",)


class Coverage(_Manifold):
    """Share of real samples whose k = 5 ball contains a generated sample."""

    keys = ("coverage",)
