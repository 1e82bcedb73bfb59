"""The course's vanilla GAN: fully connected networks for vectors and flattened images."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from gantoolkit.components import Architecture, ModelSpec
from gantoolkit.errors import ConfigError
from gantoolkit.layers import LabelledSequential, generator_norm


class MLPGenerator(nn.Module):
    """Blocks Linear→BatchNorm→ReLU of widths h, 2h, 4h, …, then Linear to the data (tanh for images). `norm`
    makes the normalisation layers (BatchNorm, or a conditioning's, which take the labels)."""

    def __init__(self, in_dim: int, shape: tuple[int, ...], hidden: int, depth: int, image: bool,
                 norm: Callable[[int], nn.Module] = nn.BatchNorm1d) -> None:
        super().__init__()
        widths = [hidden * 2**i for i in range(depth)]
        layers: list[nn.Module] = []
        prev = in_dim
        for width in widths:
            layers += [nn.Linear(prev, width), norm(width), nn.ReLU(inplace=True)]
            prev = width
        layers.append(nn.Linear(prev, math.prod(shape)))
        if image:
            layers.append(nn.Tanh())
        self.main = LabelledSequential(*layers)
        self.shape = shape

    def forward(self, v: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(v, labels).view(v.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    """Blocks Linear→LeakyReLU(0.2) of widths …, 2h, h; features are the last block's output."""

    def __init__(self, in_shape: tuple[int, ...], hidden: int, depth: int) -> None:
        super().__init__()
        widths = [hidden * 2**i for i in reversed(range(depth))]
        layers: list[nn.Module] = [nn.Flatten()]
        prev = math.prod(in_shape)
        for width in widths:
            layers += [nn.Linear(prev, width), nn.LeakyReLU(0.2, inplace=True)]
            prev = width
        self.main = nn.Sequential(*layers)
        self.final = nn.Linear(prev, 1)
        self.feature_dim = prev

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.final(h).view(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(Architecture):
    """Fully connected generator (depth `g_depth`) and critic (depth `d_depth`) with base width `hidden_dim`.
    Supports conditional normalisation in the generator."""

    supports_conditional_norm = True
    supports_rectangular = True  # images are flattened: any height and width

    def __init__(self, hidden_dim: int = 128, g_depth: int = 4, d_depth: int = 3) -> None:
        if hidden_dim < 1 or g_depth < 1 or d_depth < 1:
            raise ConfigError(
                f"mlp needs positive sizes, got hidden_dim={hidden_dim}, g_depth={g_depth}, d_depth={d_depth}"
            )
        self.hidden_dim, self.g_depth, self.d_depth = hidden_dim, g_depth, d_depth

    def build(self, spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
        g = MLPGenerator(spec.generator_input_dim, spec.data.shape, self.hidden_dim, self.g_depth, spec.data.is_image,
                         generator_norm(spec, nn.BatchNorm1d))
        d = MLPDiscriminator(spec.discriminator_input_shape, self.hidden_dim, self.d_depth)
        return g, d
