"""The least-squares GAN loss (LSGAN, Mao et al. 2017)."""

from __future__ import annotations

import torch

from gantoolkit.components import Loss, OptimizerSpec


class LSGAN(Loss):
    """The critic regresses real scores to 1 and fake ones to 0, the generator pulls fake scores to 1 (the paper's
    0-1-1 coding): critic 0.5 · (E[(D(x) − 1)²] + E[D(G(z))²]), generator 0.5 · E[(D(G(z)) − 1)²]."""

    n_critic = 1
    score_midpoint = 0.5  # between the reals' 1 and the fakes' 0

    def optimizer(self) -> OptimizerSpec:
        return OptimizerSpec("adam", 2e-4, (0.5, 0.999))

    def discriminator_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_scores - 1) ** 2).mean() + 0.5 * (fake_scores ** 2).mean()

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake_scores - 1) ** 2).mean()
