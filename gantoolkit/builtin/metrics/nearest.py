"""The course's memorisation check: generated images beside their nearest training images.

Distances are per-pixel RMS in model space ([-1, 1]): `nn_dist` is the mean distance from a generated image to its
nearest training image; `nn_dist_real` the same for training images to their nearest *other* training image. A
ratio `nn_ratio` well below 1 means the samples sit closer to the training set than its own images do to each other:
look at the grid for copies.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from gantoolkit.builtin.metrics.distances import BLOCK_ENTRIES, pairwise_distances
from gantoolkit.data import to_model_space, to_uint8
from gantoolkit.evaluation import EvalContext, Metric
from gantoolkit.files.checkpoint import atomic_write

#: generated samples whose neighbours are searched (each against the whole training set)
NN_SAMPLES = 1000
GRID_ROWS = 8
NEIGHBOURS = 5


def nearest_neighbours(queries: torch.Tensor, pool: Callable[[int, int], torch.Tensor], size: int, k: int,
                       exclude: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices of each query's k nearest rows of a pool of `size` rows read in blocks by
    `pool(start, stop)`, so a large training set is never held in model space at once. `exclude[i]` is a pool row
    query i may not match (itself)."""
    queries = queries.float().flatten(1)
    k = min(k, size - (exclude is not None))
    block = max(1, BLOCK_ENTRIES // max(1, queries.shape[1] + len(queries)))
    best_d = torch.full((len(queries), 0), math.inf)
    best_i = torch.zeros((len(queries), 0), dtype=torch.long)
    for start in range(0, size, block):
        rows = pool(start, min(start + block, size)).float().flatten(1)
        d = pairwise_distances(queries, rows)
        if exclude is not None:
            inside = (exclude >= start) & (exclude < start + len(rows))
            d[inside.nonzero()[:, 0], exclude[inside] - start] = math.inf
        d = torch.cat([best_d, d], 1)
        i = torch.cat([best_i, torch.arange(start, start + len(rows)).expand(len(queries), -1)], 1)
        best_d, where = d.topk(min(k, d.shape[1]), dim=1, largest=False)
        best_i = i.gather(1, where)
    return best_d, best_i


class NearestTraining(Metric):
    """Nearest training images of generated samples: a PNG grid and distance statistics."""

    keys = ("nn_dist", "nn_dist_real", "nn_ratio")
    artefacts = (("nn", ".png"),)

    def why_not(self, ctx: EvalContext) -> str | None:
        if not ctx.info.is_image:
            return "it needs images"
        if len(ctx.real) < 2:
            return "it needs at least two training images"
        return None

    def compute(self, ctx: EvalContext) -> dict[str, float | int | None]:
        fake = ctx.fake()[0][:NN_SAMPLES]
        data, info = ctx.real.data, ctx.info

        def pool(start: int, stop: int) -> torch.Tensor:
            return to_model_space(data[start:stop], info)

        scale = math.sqrt(fake[0].numel())
        dist, index = nearest_neighbours(fake, pool, len(data), NEIGHBOURS)
        rng = torch.Generator().manual_seed(ctx.seed + 11)
        probe = torch.randperm(len(data), generator=rng)[:NN_SAMPLES]
        real_dist, _ = nearest_neighbours(to_model_space(data[probe], info), pool, len(data), 1, exclude=probe)
        nn_dist = float(dist[:, 0].mean()) / scale
        nn_real = float(real_dist[:, 0].mean()) / scale
        path = ctx.artefact("nn", ".png")
        if path is not None:
            self.write_grid(path, fake, pool, dist, index)
        return {"nn_dist": nn_dist, "nn_dist_real": nn_real, "nn_ratio": nn_dist / nn_real if nn_real > 0 else None}

    @staticmethod
    def write_grid(path, fake: torch.Tensor, pool: Callable[[int, int], torch.Tensor], dist: torch.Tensor,
                   index: torch.Tensor) -> None:
        """One row per generated sample (the closest to the training set first), then its nearest training images."""
        from gantoolkit.files.images import grid, png_bytes

        rows = dist[:, 0].argsort()[:GRID_ROWS]
        k = index.shape[1]
        tiles = []
        for r in rows.tolist():
            tiles.append(fake[r])
            tiles.extend(pool(i, i + 1)[0] for i in index[r].tolist())
        atomic_write(path, png_bytes(grid(to_uint8(torch.stack(tiles)), cols=k + 1)))
