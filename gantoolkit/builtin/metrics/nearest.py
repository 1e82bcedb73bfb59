"""The course's memorisation check: generated images beside their nearest training images.

Distances are per-pixel RMS in model space ([-1, 1]): `nn_dist` is the mean distance from a generated image to its
nearest training image; `nn_dist_real` the same for training images to their nearest *other* training image. A
ratio `nn_ratio` well below 1 means the samples sit closer to the training set than its own images do to each other:
look at the grid for copies.
"""

from __future__ import annotations

import math

import torch

from gantoolkit.builtin.metrics.distances import BLOCK_ENTRIES, pairwise_distances
from gantoolkit.checkpoint import atomic_write
from gantoolkit.data import to_model_space, to_uint8
from gantoolkit.evaluation import EvalContext, Metric

#: generated samples whose neighbours are searched (each against the whole training set)
NN_SAMPLES = 1000
GRID_ROWS = 8
NEIGHBOURS = 5


def nearest_neighbours(queries: torch.Tensor, pool: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices of each query's k nearest rows of `pool` (chunked over both)."""
    queries, pool = queries.float().flatten(1), pool.float().flatten(1)
    step = max(1, BLOCK_ENTRIES // max(1, len(pool)))
    dist, index = [], []
    for start in range(0, len(queries), step):
        d = pairwise_distances(queries[start:start + step], pool)
        values, where = d.topk(min(k, len(pool)), dim=1, largest=False)
        dist.append(values)
        index.append(where)
    return torch.cat(dist), torch.cat(index)


class NearestTraining(Metric):
    """Nearest training images of generated samples: a PNG grid and distance statistics."""

    keys = ("nn_dist", "nn_dist_real", "nn_ratio")

    def why_not(self, ctx: EvalContext) -> str | None:
        if not ctx.info.is_image:
            return "it needs images"
        if len(ctx.real) < 2:
            return "it needs at least two training images"
        return None

    def compute(self, ctx: EvalContext) -> dict[str, float | int | None]:
        fake = ctx.fake()[0][:NN_SAMPLES]
        train = to_model_space(ctx.real.data, ctx.info)
        scale = math.sqrt(train[0].numel())
        dist, index = nearest_neighbours(fake, train, NEIGHBOURS)
        rng = torch.Generator().manual_seed(ctx.seed + 11)
        probe = torch.randperm(len(train), generator=rng)[:NN_SAMPLES]
        real_dist = leave_one_out_distances(train, probe)
        nn_dist = float(dist[:, 0].mean()) / scale
        nn_real = float(real_dist.mean()) / scale
        path = ctx.artefact("nn", ".png")
        if path is not None:
            self.write_grid(path, fake, train, dist, index)
        return {"nn_dist": nn_dist, "nn_dist_real": nn_real, "nn_ratio": nn_dist / nn_real if nn_real > 0 else None}

    @staticmethod
    def write_grid(path, fake: torch.Tensor, train: torch.Tensor, dist: torch.Tensor, index: torch.Tensor) -> None:
        """One row per generated sample (the closest to the training set first), then its nearest training images."""
        from gantoolkit.imageio import grid, png_bytes

        rows = dist[:, 0].argsort()[:GRID_ROWS]
        k = index.shape[1]
        tiles = []
        for r in rows.tolist():
            tiles.append(fake[r])
            tiles.extend(train[index[r]])
        atomic_write(path, png_bytes(grid(to_uint8(torch.stack(tiles)), cols=k + 1)))


def leave_one_out_distances(train: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """Distance from each probed training image to its nearest other training image."""
    queries = train[probe].float().flatten(1)
    pool = train.float().flatten(1)
    step = max(1, BLOCK_ENTRIES // max(1, len(pool)))
    out = []
    for start in range(0, len(queries), step):
        d = pairwise_distances(queries[start:start + step], pool)
        d[torch.arange(len(d)), probe[start:start + step]] = math.inf
        out.append(d.min(1).values)
    return torch.cat(out)
