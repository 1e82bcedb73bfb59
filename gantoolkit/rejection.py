"""Discriminator rejection sampling (`--sampler drs`, Azadi et al. 2019).

A BCE critic's logit estimates log p_data(x)/p_g(x) + const, so keeping each generated sample with probability
exp(D(x) − M), M the largest logit seen on a burn-in of samples, draws from a distribution closer to the data: samples
between modes, or in an over-full mode, are thinned out. It needs the critic, so a training checkpoint (not an
exported generator), and it assumes the critic was trained with a cross-entropy loss (for a Wasserstein critic the
scores are not log ratios and the result is only a heuristic). A packed critic (`pac`) scores each candidate packed
with the same m − 1 generated companions, which shifts every log ratio by one constant.

As Azadi et al. do, the critic can first be trained on (`--drs-steps N`): N Adam steps of a copy of it as a
real-vs-generated classifier on fresh real and generated batches, the generator frozen. A critic that stopped in the
middle of the game is not a converged classifier; in low dimensions a few thousand steps make its logit a sharp
estimate of the log density ratio. The steps are seeded by `seed`, so the samples repeat exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gantoolkit.errors import ConfigError
from gantoolkit.evaluation import MetricError
from gantoolkit.sampling import MAX_SEED, LoadedGenerator

#: the names `--sampler` takes
SAMPLERS = ("plain", "drs")
BURN_IN = 10_000
CHUNK = 4096
MAX_DRAWN = 200
TUNE_BATCH = 512
TUNE_LR = 1e-3


def check_sampler_options(sampler: str, drs_steps: int) -> None:
    """Refuse an unknown `--sampler`, or `--drs-steps` without drs or below 0 (before anything is loaded)."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown --sampler {sampler!r}", "use plain or drs")
    if drs_steps < 0 or (drs_steps and sampler != "drs"):
        raise ConfigError(f"--drs-steps {drs_steps} needs --sampler drs and a count of at least 0")


class RejectionSampler:
    """(n, seed) -> n accepted model-space samples and the labels they were asked for."""

    def __init__(self, model: LoadedGenerator, seed: int = 0, tune_steps: int = 0,
                 real: tuple[torch.Tensor, torch.Tensor | None] | None = None) -> None:
        state = model.checkpoint.section("critic")
        if not state:
            raise MetricError(f"--sampler drs needs the critic, and {model.checkpoint.path} holds none",
                              "use a training checkpoint or its run directory, not an exported generator")
        critic = model.models.critic
        critic.load_state_dict(state)
        self.critic = critic.to(model.device).eval()
        self.model = model
        self.pack = int(getattr(critic.body, "pack", 1))
        self.companions = model.sample(self.pack - 1, seed=_seed(seed, 1)) if self.pack > 1 else None
        self.tune_steps = tune_steps
        if tune_steps > 0:
            if real is None:
                raise MetricError("--drs-steps needs the real data", "evaluate against the training data")
            self.tune(real, tune_steps, seed)
        burn, labels = model.sample(BURN_IN, seed=_seed(seed, 2))
        self.max_score = float(self.scores(burn, labels).max())
        self.drawn = 0
        self.accepted = 0

    @torch.no_grad()
    def scores(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The critic's logit of each sample (packed with the fixed companions when the critic takes packs)."""
        out = []
        for start in range(0, len(x), CHUNK):
            xs = x[start:start + CHUNK].to(self.model.device)
            ys = labels[start:start + CHUNK].to(self.model.device) if labels is not None else None
            if self.companions is not None:
                xs, ys = self._packed(xs, ys)
                out.append(self.critic(xs, ys)[::self.pack].float().cpu())
            else:
                out.append(self.critic(xs, ys).float().cpu())
        return torch.cat(out)

    def logits(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The critic's logit of each sample, with gradients (packed like `scores`)."""
        if self.companions is not None:
            xs, ys = self._packed(x, y)
            return self.critic(xs, ys)[::self.pack]
        return self.critic(x, y)

    def tune(self, real: tuple[torch.Tensor, torch.Tensor | None], steps: int, seed: int) -> None:
        """Train the critic on as a real-vs-generated classifier (BCE, Adam), the generator frozen."""
        data, labels = real
        rng = torch.Generator().manual_seed(_seed(seed, 4))
        device = self.model.device
        self.critic.train().requires_grad_(True)
        opt = torch.optim.Adam(self.critic.parameters(), lr=TUNE_LR, betas=(0.5, 0.999))
        bce = torch.nn.BCEWithLogitsLoss()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed(seed, 5))  # dropout or similar inside a critic
            for step in range(steps):
                index = torch.randint(0, len(data), (TUNE_BATCH,), generator=rng)
                xr = data[index].to(device)
                yr = labels[index].to(device) if labels is not None and self.model.conditional else None
                xf, yf = self.model.sample(TUNE_BATCH, seed=_seed(seed, 1_000_000 + step))
                out_r = self.logits(xr, yr)
                out_f = self.logits(xf.to(device), yf.to(device) if yf is not None else None)
                loss = bce(out_r, torch.ones_like(out_r)) + bce(out_f, torch.zeros_like(out_f))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.critic.eval().requires_grad_(False)

    def _packed(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert self.companions is not None
        cx, cy = self.companions
        n, m = len(x), self.pack
        cx = cx.to(x.device)
        xs = torch.cat([x[:, None], cx[None].expand(n, *cx.shape)], 1).reshape(n * m, *x.shape[1:])
        if y is None or cy is None:
            return xs, None
        ys = torch.cat([y[:, None], cy.to(y.device)[None].expand(n, m - 1)], 1).reshape(n * m)
        return xs, ys

    def __call__(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        def draw(k: int, round_: int) -> tuple[torch.Tensor, torch.Tensor | None]:
            return self.model.sample(k, seed=_seed(seed, 100 + round_))

        samples, labels, drawn, self.max_score = rejection_sample(draw, self.scores, n, self.max_score, _seed(seed, 3))
        self.drawn += drawn
        self.accepted += n
        return samples, labels

    def describe(self) -> str:
        rate = self.accepted / self.drawn if self.drawn else 0.0
        tuned = f", critic trained on for {self.tune_steps} steps" if self.tune_steps else ""
        return f"drs (discriminator rejection sampling{tuned}, acceptance {rate:.3f})"


def rejection_sampler(model: LoadedGenerator, seed: int = 0, tune_steps: int = 0) -> RejectionSampler:
    """`--sampler drs [--drs-steps N]` of a loaded model (the real data is loaded only to train the critic on)."""
    if not tune_steps:
        return RejectionSampler(model, seed)
    from gantoolkit.evaluation import load_matching_data

    real = load_matching_data(model, None)
    return RejectionSampler(model, seed, tune_steps, (real.data, real.labels))


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


def _seed(seed: int, stream: int) -> int:
    return (seed * 1_000_003 + stream * 7_919) % MAX_SEED
