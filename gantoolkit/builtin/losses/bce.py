"""Binary cross-entropy, computed on logits so that log(0) never happens."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from gantoolkit.builtin.losses.penalties import check_weight, zero_centred
from gantoolkit.components import Loss, OptimizerSpec, PenaltyContext
from gantoolkit.errors import ConfigError


class BCE(Loss):
    """The original GAN loss.

    generator_loss: "non-saturating" minimises −log D(G(z)) (strong gradients early on); "minimax" minimises
    log(1 − D(G(z))), the form whose gradients vanish when the critic wins. label_smoothing: real targets become
    1 − label_smoothing (one-sided smoothing, Salimans et al.). r1: weight γ of the zero-centred gradient penalty on
    real data, γ/2 · E‖∇ₓD(x)‖² (Mescheder et al. 2018; 0, the default, for none). r2: the same on the fake data (R2).
    """

    n_critic = 1

    def __init__(
        self,
        generator_loss: Literal["non-saturating", "minimax"] = "non-saturating",
        label_smoothing: float = 0.0,
        r1: float = 0.0,
        r2: float = 0.0,
    ) -> None:
        if not 0.0 <= label_smoothing < 0.5:
            raise ConfigError(f"bce label_smoothing must lie in [0, 0.5), got {label_smoothing}")
        check_weight("bce", "r1", r1)
        check_weight("bce", "r2", r2)
        self.r1, self.r2 = r1, r2
        self.critic_batchnorm = r1 == 0 and r2 == 0  # a per-sample penalty forbids BatchNorm in the critic
        self.minimax = generator_loss == "minimax"
        self.real_target = 1.0 - label_smoothing

    def optimizer(self) -> OptimizerSpec:
        return OptimizerSpec("adam", 2e-4, (0.5, 0.999))

    def discriminator_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        real = F.binary_cross_entropy_with_logits(real_scores, torch.full_like(real_scores, self.real_target))
        fake = F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))
        return real + fake

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        if self.minimax:
            return -F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))
        return F.binary_cross_entropy_with_logits(fake_scores, torch.ones_like(fake_scores))

    def penalty(self, ctx: PenaltyContext) -> torch.Tensor | None:
        return zero_centred(ctx, self.r1, self.r2)
