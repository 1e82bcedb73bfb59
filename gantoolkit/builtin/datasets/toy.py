"""`toy:ring` and `toy:grid`: the 2-D Gaussian mixtures of the mode-collapse benchmarks."""

from __future__ import annotations

import math

import torch

from gantoolkit.data import VECTOR, DataInfo, DataRequest, Dataset, DataSource
from gantoolkit.errors import DataError

#: the data never depends on the run's seed, so every run (and every metric) sees the same points
DATA_SEED = 0
#: the most points of a mixture (100 times the benchmarks' 100,000; a checkpoint may claim any n)
MAX_POINTS = 10_000_000


def mixture_modes(name: str) -> tuple[list[list[float]], float]:
    """The mode means and the per-axis standard deviation of a named mixture."""
    if name == "ring":  # 8 modes on the unit circle, at angles 2*pi*i/8 (i = 0..7)
        return [[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)], 0.01
    if name == "grid":  # 25 modes at {-4, -2, 0, 2, 4}^2
        return [[float(x), float(y)] for x in range(-4, 5, 2) for y in range(-4, 5, 2)], 0.05
    raise DataError(f"unknown toy mixture {name!r}", "use toy:ring or toy:grid")


class Mixture(DataSource):
    """`n` points from a 2-D Gaussian mixture, each from a uniformly chosen mode; labels are mode indices."""

    argument_is_path = False  # a mixture name, never a file

    def __init__(self, n: int = 100_000) -> None:
        if not 1 <= n <= MAX_POINTS:
            raise DataError(f"toy n must be between 1 and {MAX_POINTS:,}, got {n:,}", "use e.g. n=100000")
        self.n = n

    def load(self, request: DataRequest) -> Dataset:
        if not request.argument:
            raise DataError("the toy dataset needs a mixture name", "use toy:ring or toy:grid")
        name = request.argument
        modes, std = mixture_modes(name)
        means = torch.tensor(modes, dtype=torch.float64)
        rng = torch.Generator().manual_seed(DATA_SEED)
        index = torch.randint(0, len(modes), (self.n,), generator=rng)
        noise = torch.randn(self.n, 2, generator=rng, dtype=torch.float64)
        data = (means[index] + std * noise).to(torch.float32)
        info = DataInfo(
            source=f"toy:{name}",
            modality=VECTOR,
            shape=(2,),
            num_classes=len(modes),
            class_names=tuple(f"mode{i}" for i in range(len(modes))),
            extra={"modes": modes, "std": std, "mixture": name},
        )
        return Dataset(info, data, index.to(torch.int64))
