"""Helpers for architectures whose generator takes the conditioning's normalisation layers (`--cond cbn`).

An architecture supports conditional normalisation in three steps:

1. it sets `supports_conditional_norm = True`;
2. it makes each normalisation layer of its generator with `generator_norm(spec, default)(num_features)` (the
   conditioning's layer when `spec.generator_norm` is set, else `default`, e.g. `nn.BatchNorm2d`);
3. its generator's `forward(v, labels=None)` hands `labels` to those layers: `LabelledSequential` does it for a
   chain of layers, and `takes_labels(layer)` tells which layers want them.

Without a conditioning that brings layers, the generator is the same module as before (same layers, same state
dict keys) and is called as body(v).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from gantoolkit.errors import ConfigError

if TYPE_CHECKING:
    from gantoolkit.components import ModelSpec

#: the attribute gantoolkit sets on every layer a conditioning's `norm_layer` made (see `takes_labels`)
TAKES_LABELS = "takes_labels"


def generator_norm(spec: ModelSpec, default: Callable[[int], nn.Module]) -> Callable[[int], nn.Module]:
    """What to make each of the generator's normalisation layers with: the conditioning's when it brings them,
    else `default` (called with the number of channels)."""
    return spec.generator_norm if spec.generator_norm is not None else default


def takes_labels(layer: nn.Module) -> bool:
    """Whether `layer` is called as layer(x, labels): a conditioning's normalisation layer."""
    return bool(getattr(layer, TAKES_LABELS, False))


class LabelledSequential(nn.Sequential):
    """`nn.Sequential` whose forward(x, labels=None) hands `labels` to the layers that take them. Its state dict
    keys are those of the `nn.Sequential` it replaces."""

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x, labels) if takes_labels(layer) else layer(x)
        return x


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose gain and bias come from the class: y = γ_y · BN(x) + β_y (de Vries et al. 2017; BigGAN,
    StudioGAN), on B×C or B×C×H×W. γ starts as N(1, 0.02) per class and β at 0, as DCGAN initialises BatchNorm."""

    def __init__(self, num_features: int, num_classes: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError("conditional BatchNorm needs classes", "use a labelled dataset")
        self.norm = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.normal_(self.gain.weight, 1.0, 0.02)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            raise ConfigError("conditional BatchNorm needs labels", "give the generator a class")
        flat = x.dim() == 2
        h = self.norm(x[:, :, None, None] if flat else x)
        shape = (-1, h.shape[1], 1, 1)  # not len(x): a traced graph (gantool export) keeps its batch axis free
        h = h * self.gain(labels).view(shape).to(h.dtype) + self.bias(labels).view(shape).to(h.dtype)
        return h[:, :, 0, 0] if flat else h
