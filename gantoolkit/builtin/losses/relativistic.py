"""The relativistic pairing loss (RpGAN) with zero-centred penalties on real and fake data, as R3GAN trains."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gantoolkit.builtin.losses.penalties import check_weight, zero_centred
from gantoolkit.components import Loss, OptimizerSpec, PenaltyContext
from gantoolkit.errors import ConfigError


def _pairs(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> None:
    if real_scores.shape != fake_scores.shape:  # shapes are host metadata: no sync
        raise ValueError(f"rpgan pairs each fake score with a real one, got real {tuple(real_scores.shape)} "
                         f"and fake {tuple(fake_scores.shape)}")


class RPGAN(Loss):
    """Relativistic pairing (Jolicoeur-Martineau 2018; R3GAN, Huang et al. 2024): the i-th fake is judged against the
    i-th real. Critic softplus(D(fake) − D(real)).mean(), generator softplus(D(real) − D(fake)).mean().

    r1, r2: weights γ of the zero-centred gradient penalties on real and on fake data, γ/2 · E‖∇ₓD‖² each (R3GAN's
    loss adds γ/2 · (R1 + R2) with one γ for both; its presets go from 0.05 at CIFAR-10 to 150 at FFHQ-256, so tune
    it). lazy_every: the penalties only every N critic steps, weighted by N (R3GAN computes them every step).
    """

    n_critic = 1
    needs_real_scores = True
    score_midpoint = None  # only D(real) - D(fake) matters

    def __init__(self, r1: float = 1.0, r2: float = 1.0, lazy_every: int = 1) -> None:
        check_weight("rpgan", "r1", r1)
        check_weight("rpgan", "r2", r2)
        if lazy_every < 1:
            raise ConfigError(f"rpgan lazy_every must be at least 1, got {lazy_every}")
        self.r1, self.r2, self.lazy_every = r1, r2, lazy_every
        self.critic_batchnorm = r1 == 0 and r2 == 0  # a per-sample penalty forbids BatchNorm in the critic

    def optimizer(self) -> OptimizerSpec:
        return OptimizerSpec("adam", 2e-4, (0.0, 0.99))  # R3GAN: Adam 2e-4, β1 = 0, β2 from 0.9 to 0.99

    def discriminator_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        _pairs(real_scores, fake_scores)
        return F.softplus(fake_scores - real_scores).mean()

    def generator_loss(self, fake_scores: torch.Tensor, real_scores: torch.Tensor | None = None) -> torch.Tensor:
        if real_scores is None:
            raise TypeError("rpgan's generator_loss needs the real scores: generator_loss(fake_scores, real_scores) "
                            "(it sets needs_real_scores)")
        _pairs(real_scores, fake_scores)
        return F.softplus(real_scores - fake_scores).mean()

    def penalty(self, ctx: PenaltyContext) -> torch.Tensor | None:
        return zero_centred(ctx, self.r1, self.r2, self.lazy_every)
