"""R3GAN's simplified ResNet (Huang et al., NeurIPS 2024, "The GAN is dead; long live the GAN!"), as in
brownvc/R3GAN's `R3GAN/Networks.py`, for images whose height and width are powers of two from 8 up.

Both networks are stages of residual blocks, one stage per resolution from 4x4 up. A block is an inverted
bottleneck: 1x1 convolution to `width * expansion` channels, leaky ReLU, grouped 3x3 convolution (`group_size`
channels per group), leaky ReLU, 1x1 convolution back, added to the input. There is no normalisation layer anywhere
(so every gradient penalty is valid). Initialisation is fix-up style: weights ~ N(0, gain / sqrt(fan_in)) with the
residual branches' gain scaled by L^(-1/4) (L blocks in the network), and the last convolution of every branch
zero-initialised, so each block starts as the identity. Resampling is bilinear ([1, 3, 3, 1] filter). The generator
starts from a learned 4x4 basis scaled per channel by a linear map of its input; the critic ends with a depthwise
4x4 convolution (its features) and a linear score. Images that are not square start (and the critic ends) at a
rectangular map, 4 on the shorter side (`gantoolkit.layers.base_map`: 4x8 for 16x32 images); the widths are those
of the shorter side's stages.

Differences from the paper's code, for gantoolkit's contract: the generator ends with tanh (images in [-1, 1]), a
conditioning enters through `generator_input_dim` and the critic's input channels or features (onehot, projection)
rather than R3GAN's own class embedding, and the blocks per stage are one number for every stage.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from gantoolkit.components import Architecture, ModelSpec
from gantoolkit.data import DataInfo
from gantoolkit.errors import ConfigError
from gantoolkit.layers import base_map, image_sides

#: leaky ReLU's slope and the gain that keeps activations' variance through it (R3GAN's BiasedActivation.Gain)
SLOPE = 0.2
ACTIVATION_GAIN = math.sqrt(2 / (1 + SLOPE**2))
#: the default width of the stage at resolution r: min(BASE // r, MAX), at least MIN (StyleGAN's channel rule). The
#: image's resolution costs the most CPU time, so the widths are largest where the maps are smallest
WIDTH_BASE, WIDTH_MAX, WIDTH_MIN = 256, 64, 16


def _msr_init(layer: nn.Conv2d | nn.Linear, gain: float = 1.0) -> None:
    """Weights ~ N(0, gain / sqrt(fan_in)) (R3GAN's MSRInitializer); a gain of 0 zero-initialises the layer."""
    with torch.no_grad():
        if gain:
            layer.weight.normal_(0.0, gain / math.sqrt(layer.weight[0].numel()))
        else:
            layer.weight.zero_()


def _conv(cin: int, cout: int, kernel: int = 1, groups: int = 1, gain: float = 1.0, padding: int | None = None
          ) -> nn.Conv2d:
    """A bias-free convolution (same padding unless given), MSR-initialised with `gain`."""
    conv = nn.Conv2d(cin, cout, kernel, padding=(kernel - 1) // 2 if padding is None else padding, groups=groups,
                     bias=False)
    _msr_init(conv, gain)
    return conv


class BiasedLeakyReLU(nn.Module):
    """A learned per-channel bias (starting at 0), then leaky ReLU: the only biases of the networks."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.to(x.dtype).view(1, -1, 1, 1), SLOPE)


def _along(x: torch.Tensor, dim: int, start: int, stop: int, step: int = 1) -> torch.Tensor:
    """x[..., start:stop:step] along `dim` (-1: width, -2: height), a view."""
    index = [slice(None)] * x.dim()
    index[dim] = slice(start, stop, step)
    return x[tuple(index)]


def _pad(x: torch.Tensor, dim: int) -> torch.Tensor:
    """One zero on both sides along `dim`."""
    return F.pad(x, (1, 1) if dim == -1 else (0, 0, 1, 1))


def _up(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Bilinear 2x upsampling along `dim`, zero outside: out[2i] = (x[i-1] + 3 x[i]) / 4 and out[2i+1] = (3 x[i] +
    x[i+1]) / 4, R3GAN's [1, 3, 3, 1] filter transposed with stride 2."""
    n, p = x.shape[dim], _pad(x, dim)
    left, mid, right = (_along(p, dim, k, k + n) for k in range(3))
    even, odd = (left + 3 * mid) * 0.25, (3 * mid + right) * 0.25
    return torch.stack([even, odd], dim=dim).flatten(dim - 1, dim) if dim == -1 else \
        torch.stack([even, odd], dim=-2).flatten(-3, -2)


def _down(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Antialiased 2x downsampling along `dim`, zero outside: out[i] = (x[2i-1] + 3 x[2i] + 3 x[2i+1] + x[2i+2]) /
    8, R3GAN's [1, 3, 3, 1] filter with stride 2."""
    n, p = x.shape[dim], _pad(x, dim)
    a, b, c, d = (_along(p, dim, k, k + n, 2) for k in range(4))
    return (a + d + 3 * (b + c)) * 0.125


class Resample(nn.Module):
    """Bilinear 2x upsampling (`up`) or antialiased 2x downsampling, separably, with zero padding at the borders:
    R3GAN's InterpolativeUpsampler / InterpolativeDownsampler (filter [1, 3, 3, 1]) as slices and sums, which are
    many times faster on a CPU than its per-channel convolutions and exact under double backward."""

    def __init__(self, up: bool) -> None:
        super().__init__()
        self.up = up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step = _up if self.up else _down
        return step(step(x, -1), -2)

    def extra_repr(self) -> str:
        return "up" if self.up else "down"


class ResidualBlock(nn.Module):
    """x + conv1x1(act(grouped conv3x3(act(conv1x1(x))))): an inverted bottleneck, its last convolution zero."""

    def __init__(self, width: int, expansion: int, group_size: int, gain: float) -> None:
        super().__init__()
        expanded = width * expansion
        self.expand = _conv(width, expanded, gain=gain)
        self.act1 = BiasedLeakyReLU(expanded)
        self.grouped = _conv(expanded, expanded, 3, groups=expanded // group_size, gain=gain)
        self.act2 = BiasedLeakyReLU(expanded)
        self.project = _conv(expanded, width, gain=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.act2(self.grouped(self.act1(self.expand(x)))))


class GenerativeBasis(nn.Module):
    """A learned C x 4 x 4 basis (C x h x w: `base_map`), each channel scaled by a linear map of the input vector."""

    def __init__(self, in_dim: int, channels: int, size: tuple[int, int] = (4, 4)) -> None:
        super().__init__()
        self.basis = nn.Parameter(torch.empty(channels, *size).normal_(0.0, 1.0))
        self.linear = nn.Linear(in_dim, channels, bias=False)
        _msr_init(self.linear)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.basis.unsqueeze(0) * self.linear(v).view(v.shape[0], -1, 1, 1)


class Stage(nn.Module):
    """One resolution: a transition (in the generator before the blocks, in the critic after them) and blocks."""

    def __init__(self, transition: nn.Module, blocks: list[ResidualBlock], transition_first: bool) -> None:
        super().__init__()
        self.transition = transition
        self.blocks = nn.Sequential(*blocks)
        self.transition_first = transition_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transition_first:
            return self.blocks(self.transition(x))
        return self.transition(self.blocks(x))


def _change_width(cin: int, cout: int) -> nn.Module:
    return _conv(cin, cout) if cin != cout else nn.Identity()


def _count(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


class R3Generator(nn.Module):
    """v (B x in_dim) -> 4x4 basis -> stages of residual blocks, each after a bilinear 2x upsampling (and a 1x1
    convolution where the width changes) -> 1x1 convolution to the image's channels -> tanh."""

    def __init__(self, in_dim: int, channels: int, widths: list[int], blocks: int, expansion: int,
                 group_size: int, basis: tuple[int, int] = (4, 4)) -> None:
        super().__init__()
        gain = ACTIVATION_GAIN * (blocks * len(widths)) ** (-1 / 4)  # R3GAN: L^(-1 / (2m - 2)) with m = 3 layers

        def stage_blocks(width: int) -> list[ResidualBlock]:
            return [ResidualBlock(width, expansion, group_size, gain) for _ in range(blocks)]

        self.basis_size = basis
        stages = [Stage(GenerativeBasis(in_dim, widths[0], basis), stage_blocks(widths[0]), transition_first=True)]
        for cin, cout in itertools.pairwise(widths):
            up = nn.Sequential(_change_width(cin, cout), Resample(up=True))
            stages.append(Stage(up, stage_blocks(cout), transition_first=True))
        self.stages = nn.Sequential(*stages)
        self.to_image = _conv(widths[-1], channels)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_image(self.stages(v.flatten(1))))

    def parameters_by_resolution(self) -> dict[str, int]:
        """Parameters of each resolution's stage (the output convolution counts at the image's)."""
        h, w = self.basis_size
        out = {f"{h << i}x{w << i}": _count(stage) for i, stage in enumerate(self.stages)}
        out[next(reversed(out))] += _count(self.to_image)
        return out


class DiscriminativeBasis(nn.Module):
    """A depthwise 4x4 convolution of the 4x4 map (h x w: `base_map`): B x C features."""

    def __init__(self, channels: int, size: tuple[int, int] = (4, 4)) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, size if size[0] != size[1] else size[0], groups=channels,
                              bias=False)
        _msr_init(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten(1)


class R3Discriminator(nn.Module):
    """x -> 1x1 convolution -> stages of residual blocks, each followed by an antialiased 2x downsampling (and a
    1x1 convolution where the width changes) -> at 4x4 the depthwise basis: the features -> linear: the score."""

    def __init__(self, in_channels: int, widths: list[int], blocks: int, expansion: int, group_size: int,
                 basis: tuple[int, int] = (4, 4)) -> None:
        super().__init__()
        gain = ACTIVATION_GAIN * (blocks * len(widths)) ** (-1 / 4)
        top_down = list(reversed(widths))  # the image's resolution first

        def stage_blocks(width: int) -> list[ResidualBlock]:
            return [ResidualBlock(width, expansion, group_size, gain) for _ in range(blocks)]

        self.from_image = _conv(in_channels, top_down[0])
        stages = []
        for cin, cout in itertools.pairwise(top_down):
            down = nn.Sequential(Resample(up=False), _change_width(cin, cout))
            stages.append(Stage(down, stage_blocks(cin), transition_first=False))
        stages.append(Stage(DiscriminativeBasis(widths[0], basis), stage_blocks(widths[0]), transition_first=False))
        self.stages = nn.Sequential(*stages)
        self.final = nn.Linear(widths[0], 1, bias=False)
        _msr_init(self.final)
        self.feature_dim = widths[0]
        self.size = (basis[0] << (len(widths) - 1), basis[1] << (len(widths) - 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.from_image(x))

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.final(h).view(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def parameters_by_resolution(self) -> dict[str, int]:
        """Parameters of each resolution's stage, from 4x4 up (the input convolution counts at the image's, the
        score at 4x4's)."""
        counts = [_count(stage) for stage in self.stages]
        counts[0] += _count(self.from_image)
        counts[-1] += _count(self.final)
        sides = [(self.size[0] >> i, self.size[1] >> i) for i in range(len(counts))]
        return {f"{h}x{w}": n for (h, w), n in reversed(list(zip(sides, counts, strict=True)))}


class R3GAN(Architecture):
    """R3GAN's normalisation-free ResNet for images whose height and width are powers of two, 8 or more.

    Options: widths (one per resolution from 4x4 up to the image's; default min(256 / side, 64), at least 16: 64 at
    4x4, 32 at 8x8, 16 above), width_mult (scales every width), blocks (residual blocks per stage),
    expansion (the inverted bottleneck's width ratio) and group_size (channels per group of the grouped 3x3
    convolution; R3GAN uses 16, so cardinality = width * expansion / group_size). For images that are not square
    the resolutions are those of the shorter side.
    """

    supports_rectangular = True

    def __init__(
        self,
        widths: tuple[int, ...] | None = None,
        width_mult: float = 1.0,
        blocks: int = 1,
        expansion: int = 2,
        group_size: int = 16,
    ) -> None:
        if widths is not None and (not widths or min(widths) < 1):
            raise ConfigError(f"r3gan widths must be positive, got {','.join(map(str, widths)) or 'none'}",
                              "e.g. --arch-opt widths=64,64,32 for 16x16 images (4x4 first)")
        if not width_mult > 0 or not math.isfinite(width_mult):
            raise ConfigError(f"r3gan width_mult must be a positive number, got {width_mult}")
        for name, value in (("blocks", blocks), ("expansion", expansion), ("group_size", group_size)):
            if value < 1:
                raise ConfigError(f"r3gan {name} must be at least 1, got {value}")
        self.widths = tuple(widths) if widths is not None else None
        self.width_mult, self.blocks, self.expansion, self.group_size = width_mult, blocks, expansion, group_size

    def stage_widths(self, size: int, shown: str | None = None) -> list[int]:
        """The width of each stage, from 4x4 up to `size` x `size`, the images' shorter side (`shown`: how the
        images' size is named in errors; checked: ConfigError with a fix)."""
        shown = shown or f"{size}x{size}"
        resolutions = [4 << i for i in range(int(math.log2(size)) - 1)]
        if self.widths is None:
            base = [max(WIDTH_MIN, min(WIDTH_MAX, WIDTH_BASE // r)) for r in resolutions]
        elif len(self.widths) != len(resolutions):
            raise ConfigError(
                f"r3gan widths has {len(self.widths)} values, but {shown} images have {len(resolutions)} "
                f"resolutions ({', '.join(f'{r}x{r}' for r in resolutions)})",
                f"give {len(resolutions)} widths, 4x4 first, or leave widths out")
        else:
            base = list(self.widths)
        widths = [max(1, round(w * self.width_mult)) for w in base]
        for r, w in zip(resolutions, widths, strict=True):
            if (w * self.expansion) % self.group_size:
                raise ConfigError(
                    f"r3gan's {r}x{r} stage is {w} wide, and {w} x expansion {self.expansion} = "
                    f"{w * self.expansion} is not a multiple of group_size {self.group_size}",
                    "choose widths, width_mult, expansion and group_size so that width x expansion is a multiple "
                    "of group_size")
        return widths

    def check(self, data: DataInfo) -> None:
        h, w = image_sides("r3gan", data)
        self.stage_widths(min(h, w), f"{h}x{w}")

    def build(self, spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
        h, w = image_sides("r3gan", spec.data)
        widths = self.stage_widths(min(h, w), f"{h}x{w}")
        basis = base_map(h, w)
        g = R3Generator(spec.generator_input_dim, spec.data.shape[0], widths, self.blocks, self.expansion,
                        self.group_size, basis)
        d = R3Discriminator(spec.discriminator_input_shape[0], widths, self.blocks, self.expansion, self.group_size,
                            basis)
        return g, d
