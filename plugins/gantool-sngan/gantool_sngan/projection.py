"""The projection discriminator (Miyato & Koyama 2018): D(x, y) = head(h) + <embed(y), h>, h = features(x)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as sn

from gantoolkit.components import Conditioning
from gantoolkit.errors import ConfigError


class Projection(Conditioning):
    """Labels enter the generator as a one-hot vector joined to z, and the critic through a class embedding
    whose inner product with the critic's penultimate features is added to its score. The critic's input is
    the data alone. `spectral_norm`: normalise the embedding too (as SNGAN's code does).

    Works with any architecture whose discriminator exposes `features` and `feature_dim` (resnet-sn, dcgan, mlp).
    """

    def __init__(self, spectral_norm: bool = True) -> None:
        super().__init__()
        self.spectral_norm = spectral_norm

    @property
    def generator_extra_dim(self) -> int:
        return self.num_classes

    def generator_vector(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        if labels is None:
            raise ConfigError("projection conditioning needs labels", "use --cond none for unlabelled data")
        return F.one_hot(labels, self.num_classes).float()

    def critic_module(self, feature_dim: int) -> nn.Module | None:
        if feature_dim < 1:
            raise ConfigError(
                "projection needs a discriminator that reports its feature_dim", "use an architecture that does"
            )
        embed = nn.Embedding(self.num_classes, feature_dim)
        nn.init.xavier_uniform_(embed.weight)
        return sn(embed) if self.spectral_norm else embed

    def score(
        self, head_scores: torch.Tensor, features: torch.Tensor, labels: torch.Tensor | None, module: nn.Module | None
    ) -> torch.Tensor:
        if labels is None or module is None:
            raise ConfigError("projection conditioning needs labels", "use --cond none for unlabelled data")
        return head_scores + (module(labels).to(features.dtype) * features).sum(dim=1)
