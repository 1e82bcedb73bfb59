"""Helpers for architectures: the sides of the images they make (`image_sides`, `base_map`), and the
conditioning's normalisation layers in their generator (`--cond cbn`).

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
    from gantoolkit.data import DataInfo

#: the attribute gantoolkit sets on every layer a conditioning's `norm_layer` made (see `takes_labels`)
TAKES_LABELS = "takes_labels"


#: the smallest side of the images a convolutional architecture makes (its smallest map is 4 on that side)
MIN_SIDE = 8


def _nearest_power_of_two(side: int) -> int:
    """The power of two from MIN_SIDE up nearest to `side` (the larger one on a tie)."""
    upper = max(MIN_SIDE, 1 << max(0, side - 1).bit_length())
    return upper // 2 if upper // 2 >= MIN_SIDE and side - upper // 2 < upper - side else upper


def image_sides(name: str, data: DataInfo) -> tuple[int, int]:
    """(height, width) of `data`'s images; ConfigError naming architecture `name`, with the nearest size that
    works, when a side is not a power of two from 8 up."""
    if not data.is_image:
        raise ConfigError(f"{name} models images, but {data.source!r} holds vectors", "use --arch mlp")
    _, h, w = data.shape
    if any(s < MIN_SIDE or s & (s - 1) for s in (h, w)):
        fix_h, fix_w = _nearest_power_of_two(h), _nearest_power_of_two(w)
        fix = str(fix_h) if fix_h == fix_w else f"{fix_h}x{fix_w}"
        raise ConfigError(f"{name} makes images whose height and width are each a power of two from 8 up, got "
                          f"{h}x{w}", f"pass --image-size {fix}")
    return h, w


def base_map(height: int, width: int) -> tuple[int, int]:
    """The smallest map of an H×W image whose sides are powers of two: 4 on the shorter side and 4 × the aspect
    ratio on the other (4×4 for a square), so both sides double the same number of times, log2(min(H, W)) − 2."""
    side = min(height, width)
    return 4 * height // side, 4 * width // side


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
