"""The hinge loss of SNGAN, SAGAN and BigGAN (Lim & Ye 2017; Tran et al. 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gantoolkit.components import Loss, OptimizerSpec


class Hinge(Loss):
    """Critic: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))); generator: -mean(D(G(z))).

    The recipe is SNGAN's for its ResNet models: Adam with lr 2e-4 and betas (0, 0.9), 5 critic steps per
    generator step. Nothing is computed per sample from the critic's gradients, so BatchNorm in the critic is
    allowed.
    """

    n_critic = 5
    critic_batchnorm = True

    def optimizer(self) -> OptimizerSpec:
        return OptimizerSpec("adam", 2e-4, (0.0, 0.9))

    def discriminator_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -fake_scores.mean()
