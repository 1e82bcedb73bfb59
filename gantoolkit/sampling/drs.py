"""Discriminator rejection sampling (`--sampler drs`, Azadi et al. 2019).

A BCE critic's logit estimates log p_data(x)/p_g(x) + const, so keeping each generated sample with probability
exp(D(x) − M), M the largest logit seen on a burn-in of samples, draws from a distribution closer to the data: samples
between modes, or in an over-full mode, are thinned out. It needs the critic, so a training checkpoint (not an
exported generator), and it assumes the critic was trained with a cross-entropy loss (for a Wasserstein critic the
scores are not log ratios and the result is only a heuristic). As Azadi et al. do, the critic can first be trained on
(`--critic-steps N`, see `critic_scoring`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gantoolkit.evaluation import MetricError
from gantoolkit.sampling.critic import CHUNK, CriticScorer, _seed
from gantoolkit.sampling.generator import LoadedGenerator

BURN_IN = 10_000
MAX_DRAWN = 200


class RejectionSampler(CriticScorer):
    """(n, seed) -> n accepted model-space samples and the labels they were asked for."""

    def __init__(self, model: LoadedGenerator, seed: int = 0, tune_steps: int = 0,
                 real: tuple[torch.Tensor, torch.Tensor | None] | None = None) -> None:
        super().__init__(model, seed, tune_steps, real, "drs")
        burn, labels = model.sample(BURN_IN, seed=_seed(seed, 2))
        self.max_score = float(self.scores(burn, labels).max())
        self.drawn = 0
        self.accepted = 0

    def __call__(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        def draw(k: int, round_: int) -> tuple[torch.Tensor, torch.Tensor | None]:
            return self.model.sample(k, seed=_seed(seed, 100 + round_))

        samples, labels, drawn, self.max_score = rejection_sample(draw, self.scores, n, self.max_score, _seed(seed, 3))
        self.drawn += drawn
        self.accepted += n
        return samples, labels

    def describe(self) -> str:
        rate = self.accepted / self.drawn if self.drawn else 0.0
        return f"drs (discriminator rejection sampling{self.trained_on()}, acceptance {rate:.3f})"


def rejection_sample(draw: Callable[[int, int], tuple[torch.Tensor, torch.Tensor | None]],
                     score: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], n: int, max_score: float,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor | None, int, float]:
    """Keep each drawn sample with probability exp(score − M) until n are kept; M grows if a larger score appears.

    Returns the samples, their labels, how many candidates were drawn until the n-th was kept, and the final M.
    """
    rng = torch.Generator().manual_seed(seed)
    kept_x: list[torch.Tensor] = []
    kept_y: list[torch.Tensor] = []
    count, drawn, round_ = 0, 0, 0
    while count < n:
        if drawn > max(MAX_DRAWN * n, 10 * BURN_IN):
            raise MetricError(f"--sampler drs accepted only {count} of {drawn} samples",
                              "the critic rejects almost everything; evaluate without --sampler drs")
        x, labels = draw(CHUNK, round_)
        s = score(x, labels)
        max_score = max(max_score, float(s.max()))
        keep = torch.rand(len(s), generator=rng) < (s - max_score).exp()
        kept_x.append(x[keep])
        if labels is not None:
            kept_y.append(labels[keep])
        kept = int(keep.sum())
        # candidates up to the n-th kept one: the rest of the last chunk was drawn only because chunks are whole
        drawn += len(s) if count + kept < n else int(keep.nonzero()[n - count - 1]) + 1
        count += kept
        round_ += 1
    return torch.cat(kept_x)[:n], (torch.cat(kept_y)[:n] if kept_y else None), drawn, max_score

