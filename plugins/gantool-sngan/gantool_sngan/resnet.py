"""SNGAN's ResNet generator and spectrally normalised ResNet discriminator (Miyato et al. 2018, appendix B.4).

At 32x32 with ngf=256, ndf=128 this is the paper's CIFAR-10 model; any size whose height and width are powers of
two from 8 up works: the generator starts at 4x4 and doubles per block, the critic halves down to 8x8 (4x4 for 8x8
images) and then keeps `d_extra_blocks` residual blocks at that size. Images that are not square start at a
rectangular map, 4 on the shorter side (`gantoolkit.layers.base_map`: 8x4 for 32x16), and the critic halves until
its shorter side is 8 (4 for a shorter side of 8). Labels enter the way the conditioning says: extra generator
input (one-hot, projection) and extra critic input channels (onehot); the critic's penultimate features are its
ReLU'd, globally *sum*-pooled last map, as the projection discriminator expects.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gantoolkit.components import Architecture, ModelSpec
from gantoolkit.data import DataInfo
from gantoolkit.errors import ConfigError
from gantoolkit.layers import base_map, image_sides


def _init(module: nn.Module, gain: float) -> nn.Module:
    """Xavier-uniform weights (gain sqrt(2) inside residual branches, 1 elsewhere), zero biases, as in SNGAN."""
    nn.init.xavier_uniform_(module.weight, gain)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return module


class GBlock(nn.Module):
    """BN-ReLU-up-conv3x3-BN-ReLU-conv3x3, plus a learned 1x1 shortcut of the upsampled input."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.b1, self.b2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.c1 = _init(nn.Conv2d(cin, cout, 3, 1, 1), math.sqrt(2))
        self.c2 = _init(nn.Conv2d(cout, cout, 3, 1, 1), math.sqrt(2))
        self.shortcut = _init(nn.Conv2d(cin, cout, 1), 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.b1(x)), scale_factor=2, mode="nearest")
        h = self.c2(F.relu(self.b2(self.c1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResNetGenerator(nn.Module):
    """v (B x in_dim) -> linear to ngf x 4 x 4 (h x w: `base_map`) -> log2(shorter side) - 2 upsampling blocks ->
    BN-ReLU-conv3x3-tanh."""

    def __init__(self, in_dim: int, channels: int, size: tuple[int, int], ngf: int) -> None:
        super().__init__()
        self.ngf = ngf
        self.map_size = base_map(*size)
        self.linear = _init(nn.Linear(in_dim, ngf * self.map_size[0] * self.map_size[1]), 1.0)
        self.blocks = nn.Sequential(*(GBlock(ngf, ngf) for _ in range(int(math.log2(min(size))) - 2)))
        self.bn = nn.BatchNorm2d(ngf)
        self.out = _init(nn.Conv2d(ngf, channels, 3, 1, 1), 1.0)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.linear(v).view(v.shape[0], self.ngf, *self.map_size))
        return torch.tanh(self.out(F.relu(self.bn(h))))


class DBlock(nn.Module):
    """ReLU-conv3x3-ReLU-conv3x3 (then average-pool when downsampling), plus a shortcut; no normalisation layers.

    `first`: the paper's optimized first block (no ReLU before the first convolution, pool before the shortcut).
    """

    def __init__(self, cin: int, cout: int, downsample: bool, first: bool, sn: bool) -> None:
        super().__init__()
        wrap = spectral_norm if sn else (lambda m: m)
        self.first, self.downsample = first, downsample
        self.c1 = wrap(_init(nn.Conv2d(cin, cout, 3, 1, 1), math.sqrt(2)))
        self.c2 = wrap(_init(nn.Conv2d(cout, cout, 3, 1, 1), math.sqrt(2)))
        self.learned_shortcut = first or downsample or cin != cout
        self.shortcut = wrap(_init(nn.Conv2d(cin, cout, 1), 1.0)) if self.learned_shortcut else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c2(F.relu(self.c1(x if self.first else F.relu(x))))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is None:
            return h + x
        if self.first:
            return h + self.shortcut(F.avg_pool2d(x, 2))
        s = self.shortcut(x)
        return h + (F.avg_pool2d(s, 2) if self.downsample else s)


class ResNetDiscriminator(nn.Module):
    """x -> residual blocks -> ReLU -> sum over H, W (`features`, B x ndf) -> spectrally normalised linear (`head`)."""

    def __init__(self, channels: int, size: tuple[int, int], ndf: int, extra_blocks: int, sn: bool) -> None:
        super().__init__()
        blocks = [DBlock(channels, ndf, downsample=True, first=True, sn=sn)]
        res = min(size) // 2
        while res > 8:
            blocks.append(DBlock(ndf, ndf, downsample=True, first=False, sn=sn))
            res //= 2
        blocks += [DBlock(ndf, ndf, downsample=False, first=False, sn=sn) for _ in range(extra_blocks)]
        self.blocks = nn.Sequential(*blocks)
        linear = _init(nn.Linear(ndf, 1), 1.0)
        self.linear = spectral_norm(linear) if sn else linear
        self.feature_dim = ndf

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h).view(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ResNetSN(Architecture):
    """SNGAN's ResNet pair for images whose height and width are powers of two, 8 or more.

    Options: ngf / ndf (widths of the generator's and the critic's blocks: 32 keeps a CPU run on digits to minutes;
    the paper uses 256 / 128 at 32x32),
    d_extra_blocks (critic blocks kept at the final resolution; 2 in the paper), spectral_norm (off only for
    ablations). The critic never uses BatchNorm, so every loss (gradient penalties included) may be used.
    """

    supports_rectangular = True

    def __init__(self, ngf: int = 32, ndf: int = 32, d_extra_blocks: int = 2, spectral_norm: bool = True) -> None:
        if ngf < 1 or ndf < 1 or d_extra_blocks < 0:
            raise ConfigError(
                f"resnet-sn needs positive ngf and ndf and d_extra_blocks >= 0, got ngf={ngf}, ndf={ndf}, "
                f"d_extra_blocks={d_extra_blocks}",
                "for example --arch-opt ngf=32 --arch-opt ndf=32",
            )
        self.ngf, self.ndf, self.extra, self.sn = ngf, ndf, d_extra_blocks, spectral_norm

    def check(self, data: DataInfo) -> None:
        image_sides("resnet-sn", data)

    def build(self, spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
        size = image_sides("resnet-sn", spec.data)
        g = ResNetGenerator(spec.generator_input_dim, spec.data.shape[0], size, self.ngf)
        d = ResNetDiscriminator(spec.discriminator_input_shape[0], size, self.ndf, self.extra, self.sn)
        return g, d
