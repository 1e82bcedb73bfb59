"""DCGAN (Radford et al.), generalised to any power-of-two size; at 64×64 it is exactly pytorch/examples' model.

Images that are not square (H×W, both powers of two) start from a rectangular map, 4 on the shorter side S and
4·W/S or 4·H/S on the other (`gantoolkit.layers.base_map`), so both sides double the same number of times and the
widths are those of S×S.

Transposed convolutions with kernel 4 and stride 2 are what produce the course's checkerboard artefacts; the
`upsample="resize"` option replaces them with nearest-neighbour upsampling followed by a 3×3 convolution.
The generator takes a conditioning's normalisation layers (conditional BatchNorm, `--cond cbn`) in place of its
BatchNorm layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from gantoolkit.builtin.archs.init import dcgan_init
from gantoolkit.components import Architecture, ModelSpec
from gantoolkit.data import DataInfo
from gantoolkit.errors import ConfigError
from gantoolkit.layers import LabelledSequential, base_map, generator_norm, image_sides

Norm = Literal["auto", "batch", "layer", "none"]


def _kernel(height: int, width: int) -> int | tuple[int, int]:
    """The base map as a kernel size: an int when square (pytorch/examples' layers, exactly)."""
    h, w = base_map(height, width)
    return h if h == w else (h, w)


def _up(cin: int, cout: int, mode: str) -> list[nn.Module]:
    if mode == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=False)]
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)]


class DCGANGenerator(nn.Module):
    """z (B×in_dim) -> 4×4 feature map (see `base_map` for H×W) -> doubling blocks -> C×H×W in [-1, 1]. `norm` makes
    the normalisation layers (BatchNorm, or a conditioning's, which take the labels)."""

    def __init__(self, in_dim: int, channels: int, size: tuple[int, int], ngf: int, upsample: str,
                 norm: Callable[[int], nn.Module] = nn.BatchNorm2d) -> None:
        super().__init__()
        k = int(math.log2(min(size)))
        ch = ngf * 2 ** (k - 3)
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, ch, _kernel(*size), 1, 0, bias=False), norm(ch),
                                   nn.ReLU(True)]
        for _ in range(k - 3):
            layers += [*_up(ch, ch // 2, upsample), norm(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [*_up(ch, channels, upsample), nn.Tanh()]
        self.main = LabelledSequential(*layers)

    def forward(self, v: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(v.view(v.shape[0], -1, 1, 1), labels)


def _norm(kind: str, ch: int) -> list[nn.Module]:
    if kind == "batch":
        return [nn.BatchNorm2d(ch)]
    if kind == "layer":
        return [nn.GroupNorm(1, ch)]
    return []


class DCGANDiscriminator(nn.Module):
    """C×H×W -> halving blocks -> features (the flattened 4×4 map, see `base_map` for H×W) -> a convolution of the
    map's size -> raw score."""

    def __init__(self, channels: int, size: tuple[int, int], ndf: int, norm: str) -> None:
        super().__init__()
        k = int(math.log2(min(size)))
        bias = norm == "none"
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=bias), nn.LeakyReLU(0.2, inplace=True)]
        ch = ndf
        for _ in range(k - 3):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=bias), *_norm(norm, ch * 2), nn.LeakyReLU(0.2, inplace=True)]
            ch *= 2
        self.main = nn.Sequential(*layers)
        self.final = nn.Conv2d(ch, 1, _kernel(*size), 1, 0, bias=False)
        self.map_channels = ch
        self.map_size = base_map(*size)
        self.feature_dim = ch * self.map_size[0] * self.map_size[1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten(1)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.final(h.view(h.shape[0], self.map_channels, *self.map_size)).view(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class DCGAN(Architecture):
    """DCGAN for images whose height and width are powers of two, 8 or more (square or not).

    Options: ngf/ndf (base widths), critic_norm (auto: BatchNorm unless the loss forbids it, then LayerNorm),
    upsample (transpose: the paper's ConvTranspose2d; resize: nearest + conv, free of checkerboard artefacts).
    Supports conditional normalisation in the generator.
    """

    supports_conditional_norm = True
    supports_rectangular = True

    def __init__(
        self,
        ngf: int = 64,
        ndf: int = 64,
        critic_norm: Norm = "auto",
        upsample: Literal["transpose", "resize"] = "transpose",
    ) -> None:
        if ngf < 1 or ndf < 1:
            raise ConfigError(f"dcgan needs positive ngf and ndf, got ngf={ngf}, ndf={ndf}")
        self.ngf, self.ndf, self.critic_norm, self.upsample = ngf, ndf, critic_norm, upsample

    def check(self, data: DataInfo) -> None:
        image_sides("dcgan", data)

    def build(self, spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
        size = image_sides("dcgan", spec.data)
        norm = self.critic_norm
        if norm == "auto":
            norm = "batch" if spec.critic_batchnorm else "layer"
        elif norm == "batch" and not spec.critic_batchnorm:
            raise ConfigError(
                "this loss forbids BatchNorm in the critic (its penalty is per sample)", "use critic_norm=layer"
            )
        g = DCGANGenerator(spec.generator_input_dim, spec.data.shape[0], size, self.ngf, self.upsample,
                           generator_norm(spec, nn.BatchNorm2d))
        d = DCGANDiscriminator(spec.discriminator_input_shape[0], size, self.ndf, norm)
        g.apply(dcgan_init)
        d.apply(dcgan_init)
        return g, d
