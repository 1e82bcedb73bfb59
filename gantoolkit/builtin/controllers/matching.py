"""A matching-aware critic (GAN-CLS, Reed et al. 2016), as a training controller for any labelled conditioning.

The critic of a conditional GAN is only asked whether an image is real, so it may learn little about whether the
image fits its label, and a generator can pass with in-between samples (a thick 1 that reads as an 8). GAN-CLS also
shows the critic real images with wrong labels as something to reject. Here that is a ranking, so it works with any
loss (a Wasserstein critic's scores have no fixed offset, and a bounded term cannot run away):

    critic:    L_D += weight · softplus(D(x, y') − D(x, y))          x real, y its label, y' ≠ y drawn at random
    generator: L_G += generator_weight · softplus(D(G(z, y), y') − D(G(z, y), y))

Each term costs one more critic pass per step (a critic step scores the reals under y', the generator step the fakes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gantoolkit.components import ControllerContext, TrainingController
from gantoolkit.data import DataInfo
from gantoolkit.errors import ConfigError


class MatchingAware(TrainingController):
    """Options: weight (of the critic's term on real images under wrong labels), generator_weight (of the
    generator's term on its samples under wrong labels; 0 leaves the generator's loss alone)."""

    def __init__(self, weight: float = 1.0, generator_weight: float = 0.0) -> None:
        if weight < 0 or generator_weight < 0:
            raise ConfigError(f"matching weights cannot be negative, got weight={weight}, "
                              f"generator_weight={generator_weight}")
        self.weight, self.generator_weight = weight, generator_weight
        self.num_classes = 0

    def setup(self, data: DataInfo, latent_dim: int) -> None:
        if not data.labelled or data.num_classes < 2:
            raise ConfigError(f"matching shows the critic wrong labels, but {data.source!r} has no labels to swap",
                              "use a labelled dataset with a conditioning such as --cond onehot")
        self.num_classes = data.num_classes

    def discriminator_term(self, ctx: ControllerContext) -> torch.Tensor | None:
        if not self.weight or ctx.real is None:
            return None
        return self.weight * self._ranking(ctx, ctx.real, ctx.real_labels, ctx.real_scores)

    def generator_term(self, ctx: ControllerContext) -> torch.Tensor | None:
        if not self.generator_weight:
            return None
        return self.generator_weight * self._ranking(ctx, ctx.fake, ctx.fake_labels, ctx.fake_scores)

    def _ranking(self, ctx: ControllerContext, x: torch.Tensor, labels: torch.Tensor | None,
                 scores: torch.Tensor | None) -> torch.Tensor:
        """mean softplus(D(x, y') − D(x, y)) for y' a random other class than each label y."""
        if ctx.fake_labels is None or labels is None or ctx.critic is None or scores is None:
            raise ConfigError("matching needs a conditional model whose critic sees the labels",
                              "add a conditioning such as --cond onehot")
        shift = torch.randint(1, self.num_classes, labels.shape, generator=ctx.generator, device=labels.device)
        wrong = (labels + shift) % self.num_classes
        return F.softplus(ctx.critic(x, wrong).float() - scores.float()).mean()
