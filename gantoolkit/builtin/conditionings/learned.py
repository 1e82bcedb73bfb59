"""Conditionings with trainable parts: a learned class embedding (`embed`), conditional BatchNorm (`cbn`) and an
auxiliary classifier (`acgan`).

The critic side of `embed` and `cbn` is the projection discriminator (Miyato & Koyama 2018): the critic sees the
data alone and its score gains <e_y, h>, a learned class embedding dotted with its penultimate features h, which
needs no extra input channels and works with any critic that reports `feature_dim`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantoolkit.components import Conditioning, ControllerContext
from gantoolkit.errors import ConfigError
from gantoolkit.layers import ConditionalBatchNorm


def _needs(labels: torch.Tensor | None) -> torch.Tensor:
    if labels is None:
        raise ConfigError("this conditioning needs labels", "use --cond none for unlabelled data")
    return labels


class _EmbeddedLabels(Conditioning):
    """The generator side: a learned class embedding (dim values per class) joined to z."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        if dim < 1:
            raise ConfigError(f"the class embedding needs dim >= 1, got {dim}")
        self.dim = dim

    @property
    def generator_extra_dim(self) -> int:
        return self.dim

    def generator_module(self) -> nn.Module:
        return nn.Embedding(self.num_classes, self.dim)  # N(0, 1) entries, like z's

    def generator_vector(self, labels: torch.Tensor | None, module: nn.Module | None = None) -> torch.Tensor:
        assert module is not None  # build_models passes generator_module()'s
        return module(_needs(labels))


class _Projection(Conditioning):
    """The critic side: score = head(h) + <e_y, h> (the projection discriminator)."""

    def critic_module(self, feature_dim: int) -> nn.Module:
        if feature_dim < 1:
            raise ConfigError("the projection discriminator needs a critic that reports its feature_dim",
                              "use an architecture whose critic exposes features")
        embed = nn.Embedding(self.num_classes, feature_dim)
        nn.init.xavier_uniform_(embed.weight)  # as SNGAN's projection code
        return embed

    def score(self, head_scores: torch.Tensor, features: torch.Tensor, labels: torch.Tensor | None,
              module: nn.Module | None) -> torch.Tensor:
        assert module is not None
        return head_scores + (module(_needs(labels)).to(features.dtype) * features).sum(dim=1)


class Embed(_EmbeddedLabels, _Projection):
    """A learned class embedding joined to z (generator); the projection discriminator (critic). Option: dim (the
    embedding's width)."""


class CBN(_Projection):
    """Conditional BatchNorm in the generator (each class its own gain and bias, BigGAN-style; z alone is the
    generator's input); the projection discriminator (critic). Needs an architecture that supports conditional
    normalisation."""

    conditional_norm = True

    def norm_layer(self, num_features: int) -> nn.Module:
        return ConditionalBatchNorm(num_features, self.num_classes)


class ACGAN(_EmbeddedLabels):
    """AC-GAN (Odena et al. 2017): a learned class embedding joined to z; the critic sees the data alone and an
    auxiliary classifier on its features predicts the class. weight × its cross-entropy is added to the critic's
    loss on real and generated batches, and to the generator's on generated ones. Options: dim, weight."""

    def __init__(self, dim: int = 32, weight: float = 1.0) -> None:
        super().__init__(dim)
        if weight < 0:
            raise ConfigError(f"acgan weight cannot be negative, got {weight}")
        self.weight = weight

    def critic_module(self, feature_dim: int) -> nn.Module:
        if feature_dim < 1:
            raise ConfigError("acgan needs a critic that reports its feature_dim",
                              "use an architecture whose critic exposes features")
        return nn.Linear(feature_dim, self.num_classes)

    def _cross_entropy(self, module: nn.Module | None, features: torch.Tensor,
                       labels: torch.Tensor | None) -> torch.Tensor:
        assert module is not None
        return F.cross_entropy(module(features).float(), _needs(labels))

    def discriminator_term(self, ctx: ControllerContext) -> torch.Tensor:
        term = self._cross_entropy(ctx.module, ctx.fake_features, ctx.fake_labels)
        if ctx.real_features is not None:
            term = term + self._cross_entropy(ctx.module, ctx.real_features, ctx.real_labels)
        return self.weight * term

    def generator_term(self, ctx: ControllerContext) -> torch.Tensor:
        return self.weight * self._cross_entropy(ctx.module, ctx.fake_features, ctx.fake_labels)
