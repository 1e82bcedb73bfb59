"""PacGAN (Lin et al. 2018): the critic scores packs of m samples concatenated, which penalises mode collapse.

`--arch pac --arch-opt base=mlp --arch-opt pack=4 --arch-opt hidden_dim=128`: the generator is the base
architecture's; the critic is the base's critic built for m× wider input (vectors side by side, images stacked on
channels), fed with consecutive samples of a batch. Every other option goes to the base architecture. Batches must
be multiples of `pack`; each sample gets its pack's critic features.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from gantoolkit.components import Architecture, ModelSpec
from gantoolkit.data import DataInfo
from gantoolkit.errors import ConfigError


class PackedCritic(nn.Module):
    """B×shape -> (B/m)×(m·shape[0], ...) -> the base critic's features, given to each of the pack's m samples.

    Every sample carries its pack's features and score, so a loss's mean over the batch is exactly the mean over
    packs (with exactly its gradient). A per-sample gradient penalty sees m× the pack gradient's share of a sample.
    """

    body: Any  # the base critic body: features(x), head(h), feature_dim

    def __init__(self, body: nn.Module, pack: int) -> None:
        super().__init__()
        self.body = body
        self.pack = pack
        self.feature_dim = int(getattr(body, "feature_dim", 0))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if b % self.pack:
            raise ConfigError(f"pac: a batch of {b} cannot be cut into packs of {self.pack}",
                              f"use a batch size that is a multiple of {self.pack}")
        packs = self.body.features(x.reshape(b // self.pack, self.pack * x.shape[1], *x.shape[2:]))
        return packs.repeat_interleave(self.pack, dim=0)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.body.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Pac(Architecture):
    """The base architecture with a packed critic (pack = 1 is the base itself)."""

    def __init__(self, base: str = "mlp", pack: int = 2, **options: Any) -> None:
        from gantoolkit.registry import get_registry

        if pack < 1:
            raise ConfigError(f"pac pack must be at least 1, got {pack}", "PacGAN uses 2 to 4")
        if base == "pac":
            raise ConfigError("pac cannot pack itself", "give a base architecture such as mlp or dcgan")
        spec, _ = get_registry().get("architecture", base)
        self.base: Architecture = spec.create(options)
        if not isinstance(self.base, Architecture):
            raise ConfigError(f"architecture {base!r} is not a gantoolkit Architecture")
        self.pack = pack
        self.supports_conditional_norm = self.base.supports_conditional_norm  # the generator is the base's
        self.supports_rectangular = getattr(self.base, "supports_rectangular", False)  # and so are the sizes

    def check(self, data: DataInfo) -> None:
        self.base.check(data)

    def build(self, spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
        channels, *rest = spec.discriminator_input_shape
        packed = dataclasses.replace(spec, discriminator_input_shape=(channels * self.pack, *rest))
        g, d = self.base.build(packed)
        return g, PackedCritic(d, self.pack)
