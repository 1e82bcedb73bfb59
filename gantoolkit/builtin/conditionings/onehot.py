"""The course's conditioning: a one-hot class vector for the generator, one-hot planes for the discriminator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantoolkit.builtin.conditionings.matching import wrong_label_ranking
from gantoolkit.components import Conditioning, ControllerContext
from gantoolkit.errors import ConfigError


class Unconditional(Conditioning):
    """No conditioning."""

    requires_labels = False


class OneHot(Conditioning):
    """z ⊕ onehot(y) into G; x ⊕ K planes (plane y all ones) into D (for vectors, x ⊕ onehot(y)).

    Option: match, the weight of a matching-aware critic term (GAN-CLS: real images under a random wrong label
    rank below their own, `gantoolkit.builtin.conditionings.matching`); 0 (the default) leaves it out.
    """

    def __init__(self, match: float = 0.0) -> None:
        super().__init__()
        if match < 0:
            raise ConfigError(f"onehot match is a weight and cannot be negative, got {match}",
                              "use --cond-opt match=1, or 0 to leave the term out")
        self.match = match

    @property
    def generator_extra_dim(self) -> int:
        return self.num_classes

    @property
    def discriminator_extra_channels(self) -> int:
        return self.num_classes

    def generator_vector(self, labels: torch.Tensor | None, module: nn.Module | None = None) -> torch.Tensor | None:
        assert labels is not None
        return F.one_hot(labels, self.num_classes).float()

    def discriminator_input(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        assert labels is not None
        onehot = F.one_hot(labels, self.num_classes).to(x.dtype)
        if x.dim() == 4:
            onehot = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return torch.cat([x, onehot], dim=1)

    def discriminator_term(self, ctx: ControllerContext) -> torch.Tensor | None:
        if not self.match or ctx.real is None:
            return None
        return self.match * wrong_label_ranking(ctx, ctx.real, ctx.real_labels, ctx.real_scores, self.num_classes)
