"""Wasserstein losses: the critic's scores are unbounded and it must stay 1-Lipschitz."""

from __future__ import annotations

import torch
from torch import nn

from gantoolkit.components import Loss, OptimizerSpec, PenaltyContext
from gantoolkit.errors import ConfigError


class WGAN(Loss):
    """W-loss with weight clipping to [−clip, clip] after every critic step (Arjovsky et al.)."""

    n_critic = 5
    score_midpoint = None  # the critic's scores are defined up to a constant

    def __init__(self, clip: float = 0.01) -> None:
        if not clip > 0:
            raise ConfigError(f"wgan clip must be positive, got {clip}")
        self.clip = clip

    def optimizer(self) -> OptimizerSpec:
        return OptimizerSpec("rmsprop", 5e-5, None)

    def discriminator_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -fake_scores.mean()

    @torch.no_grad()
    def after_discriminator_step(self, critic: nn.Module) -> None:
        for p in critic.parameters():
            p.clamp_(-self.clip, self.clip)


class WGANGP(Loss):
    """W-loss with a gradient penalty λ·(‖∇D(x̂)‖₂ − 1)² on random interpolates x̂ = εx + (1−ε)G(z) (Gulrajani et al.).

    lazy_every: compute the penalty only every N critic steps, scaled by N (as StyleGAN2 does for R1).
    """

    n_critic = 5
    score_midpoint = None  # the critic's scores are defined up to a constant
    critic_batchnorm = False

    def __init__(self, gp_weight: float = 10.0, lazy_every: int = 1) -> None:
        if gp_weight < 0:
            raise ConfigError(f"wgan-gp gp_weight must be zero or positive, got {gp_weight}")
        if lazy_every < 1:
            raise ConfigError(f"wgan-gp lazy_every must be at least 1, got {lazy_every}")
        self.gp_weight, self.lazy_every = gp_weight, lazy_every

    def optimizer(self) -> OptimizerSpec:
        return OptimizerSpec("adam", 1e-4, (0.0, 0.9))

    def discriminator_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -fake_scores.mean()

    def penalty(self, ctx: PenaltyContext) -> torch.Tensor | None:
        if ctx.critic_step % self.lazy_every:
            return None
        real, fake = ctx.real.float(), ctx.fake.float()
        shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        eps = torch.rand(shape, generator=ctx.generator, device=real.device)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        scores = ctx.critic(mixed).float()  # in the trainer's precision (bf16 or fp16 autocast when --amp)
        (grad,) = ctx.gradients(scores.sum(), mixed)  # loss-scaled under fp16, so small gradients survive
        norm = grad.float().flatten(1).norm(2, dim=1)
        return self.gp_weight * self.lazy_every * ((norm - 1) ** 2).mean()
