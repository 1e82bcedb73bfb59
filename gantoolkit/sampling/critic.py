"""The trained critic as a judge of generated samples, for the samplers that use it (`drs`, `refine`).

It loads the critic saved in a training checkpoint, scores samples by its logit (a packed critic scores each sample
packed with m − 1 fixed generated companions, which shifts every score by one constant) and can first be trained on
as a real-vs-generated classifier: `--critic-steps N` Adam steps on fresh real and generated batches, the generator
frozen (Azadi et al. 2019). A critic that stopped in the middle of the game is not a converged classifier; in low
dimensions a few thousand steps make its logit a sharp estimate of the log density ratio. The steps are seeded, so
the samples repeat exactly.
"""

from __future__ import annotations

import torch

from gantoolkit.batching import in_chunks
from gantoolkit.errors import CheckpointError
from gantoolkit.evaluation import MetricError
from gantoolkit.sampling.generator import MAX_SEED, LoadedGenerator

CHUNK = 4096
TUNE_BATCH = 512
TUNE_LR = 1e-3


class CriticScorer:
    """The critic of a training checkpoint, (optionally) trained on, scoring samples by its logit."""

    def __init__(self, model: LoadedGenerator, seed: int = 0, tune_steps: int = 0,
                 real: tuple[torch.Tensor, torch.Tensor | None] | None = None, sampler: str = "drs") -> None:
        state = model.checkpoint.section("critic")
        if not state:
            raise MetricError(f"--sampler {sampler} needs the critic, and {model.checkpoint.path} holds none",
                              "use a training checkpoint or its run directory, not an exported generator")
        bad = model.checkpoint.non_finite(("critic.",))
        if bad is not None:
            raise CheckpointError(f"{model.checkpoint.path} holds NaN or infinite critic weights ({bad})",
                                  "use an earlier checkpoint of the run")
        critic = model.models.critic
        critic.load_state_dict(state)
        self.critic = critic.to(model.device).eval().requires_grad_(False)
        self.model = model
        self.pack = int(getattr(critic.body, "pack", 1))
        self.companions = model.sample(self.pack - 1, seed=_seed(seed, 1)) if self.pack > 1 else None
        self.tune_steps = tune_steps
        if tune_steps > 0:
            if real is None:
                raise MetricError("--critic-steps needs the real data", "evaluate against the training data")
            self.tune(real, tune_steps, seed)

    @torch.no_grad()
    def scores(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The critic's logit of each sample, chunk by chunk, on the CPU (without gradients)."""
        return in_chunks(lambda *part: self.logits(*part).float(), (x, labels), CHUNK, self.model.device)

    def logits(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The critic's logit of each sample (packed with the fixed companions when the critic takes packs)."""
        if self.companions is not None:
            xs, ys = self._packed(x, y)
            return self.critic(xs, ys)[::self.pack]
        return self.critic(x, y)

    def trained_on(self) -> str:
        """How the critic was trained on, for a sampler's `describe()` (empty when used as saved)."""
        return f", critic trained on for {self.tune_steps} steps" if self.tune_steps else ""

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


def _seed(seed: int, stream: int) -> int:
    return (seed * 1_000_003 + stream * 7_919) % MAX_SEED
