"""The course's conditioning: a one-hot class vector for the generator, one-hot planes for the discriminator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantoolkit.components import Conditioning


class Unconditional(Conditioning):
    """No conditioning."""

    requires_labels = False


class OneHot(Conditioning):
    """z ⊕ onehot(y) into G; x ⊕ K planes (plane y all ones) into D (for vectors, x ⊕ onehot(y))."""

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
