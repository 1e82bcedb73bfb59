"""DCGAN (Radford et al.), generalised to any power-of-two size; at 64×64 it is exactly pytorch/examples' model.

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
from gantoolkit.layers import LabelledSequential, generator_norm

Norm = Literal["auto", "batch", "layer", "none"]


def _up(cin: int, cout: int, mode: str) -> list[nn.Module]:
    if mode == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=False)]
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)]


class DCGANGenerator(nn.Module):
    """z (B×in_dim) -> 4×4 feature map -> doubling blocks -> C×S×S in [-1, 1]. `norm` makes the normalisation
    layers (BatchNorm, or a conditioning's, which take the labels)."""

    def __init__(self, in_dim: int, channels: int, size: int, ngf: int, upsample: str,
                 norm: Callable[[int], nn.Module] = nn.BatchNorm2d) -> None:
        super().__init__()
        k = int(math.log2(size))
        ch = ngf * 2 ** (k - 3)
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, ch, 4, 1, 0, bias=False), norm(ch), nn.ReLU(True)]
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
    """C×S×S -> halving blocks -> features (the flattened 4×4 map) -> 4×4 convolution -> raw score."""

    def __init__(self, channels: int, size: int, ndf: int, norm: str) -> None:
        super().__init__()
        k = int(math.log2(size))
        bias = norm == "none"
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=bias), nn.LeakyReLU(0.2, inplace=True)]
        ch = ndf
        for _ in range(k - 3):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=bias), *_norm(norm, ch * 2), nn.LeakyReLU(0.2, inplace=True)]
            ch *= 2
        self.main = nn.Sequential(*layers)
        self.final = nn.Conv2d(ch, 1, 4, 1, 0, bias=False)
        self.map_channels = ch
        self.feature_dim = ch * 16

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten(1)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.final(h.view(h.shape[0], self.map_channels, 4, 4)).view(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class DCGAN(Architecture):
    """DCGAN for square images whose side is a power of two, 8 or more.

    Options: ngf/ndf (base widths), critic_norm (auto: BatchNorm unless the loss forbids it, then LayerNorm),
    upsample (transpose: the paper's ConvTranspose2d; resize: nearest + conv, free of checkerboard artefacts).
    Supports conditional normalisation in the generator.
    """

    supports_conditional_norm = True

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
        if not data.is_image:
            raise ConfigError(f"dcgan models images, but {data.source!r} holds vectors", "use --arch mlp")
        _, h, w = data.shape
        if h != w or h < 8 or h & (h - 1):
            raise ConfigError(
                f"dcgan makes square images whose side is a power of two from 8 up, got {h}x{w}",
                f"pass --image-size {max(8, 1 << max(3, (max(h, w) - 1).bit_length()))}",
            )

    def build(self, spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
        self.check(spec.data)
        norm = self.critic_norm
        if norm == "auto":
            norm = "batch" if spec.critic_batchnorm else "layer"
        elif norm == "batch" and not spec.critic_batchnorm:
            raise ConfigError(
                "this loss forbids BatchNorm in the critic (its penalty is per sample)", "use critic_norm=layer"
            )
        channels, size, _ = spec.data.shape
        g = DCGANGenerator(spec.generator_input_dim, channels, size, self.ngf, self.upsample,
                           generator_norm(spec, nn.BatchNorm2d))
        d = DCGANDiscriminator(spec.discriminator_input_shape[0], size, self.ndf, norm)
        g.apply(dcgan_init)
        d.apply(dcgan_init)
        return g, d
