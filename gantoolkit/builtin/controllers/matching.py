"""A matching-aware critic (GAN-CLS, Reed et al. 2016) as a training controller, for any labelled conditioning:

    critic:    L_D += weight · softplus(D(x, y') − D(x, y))          x real, y its label, y' ≠ y drawn at random
    generator: L_G += generator_weight · softplus(D(G(z, y), y') − D(G(z, y), y))

The term and why it is a ranking: `gantoolkit.builtin.conditionings.matching`. Each term costs one more critic pass
per step (a critic step scores the reals under y', the generator step the fakes).
"""

from __future__ import annotations

import torch

from gantoolkit.builtin.conditionings.matching import wrong_label_ranking
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
        return self.weight * wrong_label_ranking(ctx, ctx.real, ctx.real_labels, ctx.real_scores,
                                                 self.num_classes)

    def generator_term(self, ctx: ControllerContext) -> torch.Tensor | None:
        if not self.generator_weight:
            return None
        return self.generator_weight * wrong_label_ranking(ctx, ctx.fake, ctx.fake_labels, ctx.fake_scores,
                                                           self.num_classes)
