"""The built-in samplers; drs and refine use the training checkpoint's critic (see `gantoolkit.sampling.critic`)."""

from __future__ import annotations

import torch

from gantoolkit.components import Sampler, SamplerContext
from gantoolkit.config import MAX_ITERATIONS
from gantoolkit.errors import ConfigError


class Plain(Sampler):
    """The generator's samples, with the `--class` and `--truncation` asked for."""

    def setup(self, ctx: SamplerContext) -> None:
        self.ctx = ctx

    def sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.ctx.model.sample(n, seed, self.ctx.class_index, self.ctx.truncation)

    def describe(self) -> str:
        return "plain"


def _critic_steps(critic_steps: int) -> int:
    if critic_steps < 0:
        raise ConfigError(f"--critic-steps must be at least 0, got {critic_steps}")
    if critic_steps > MAX_ITERATIONS:
        raise ConfigError(f"--critic-steps must be at most {MAX_ITERATIONS:,}, got {critic_steps:,}")
    return critic_steps


class Rejection(Sampler):
    """Option: critic_steps, how long to train the critic on first as a real-vs-generated classifier (0: as saved)."""

    def __init__(self, critic_steps: int = 0) -> None:
        self.critic_steps = _critic_steps(critic_steps)

    def setup(self, ctx: SamplerContext) -> None:
        from gantoolkit.sampling.drs import RejectionSampler

        if ctx.class_index is not None or ctx.truncation is not None:
            raise ConfigError("--sampler drs draws from the whole model", "drop --class and --truncation")
        real = ctx.training_data() if self.critic_steps else None
        self.sampler = RejectionSampler(ctx.model, ctx.seed, self.critic_steps, real)

    def sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.sampler(n, seed)

    def describe(self) -> str:
        return self.sampler.describe()


class Refinement(Sampler):
    """Options: refine_steps (gradient steps on each latent), refine_rate (their size in latent space),
    critic_steps (train the critic on first, as for drs)."""

    def __init__(self, refine_steps: int = 10, refine_rate: float = 0.01, critic_steps: int = 0) -> None:
        if refine_steps < 1:
            raise ConfigError(f"--refine-steps must be at least 1, got {refine_steps}")
        if refine_steps > MAX_ITERATIONS:
            raise ConfigError(f"--refine-steps must be at most {MAX_ITERATIONS:,}, got {refine_steps:,}")
        if not refine_rate > 0:
            raise ConfigError(f"--refine-rate must be positive, got {refine_rate}")
        self.refine_steps, self.refine_rate = refine_steps, refine_rate
        self.critic_steps = _critic_steps(critic_steps)

    def setup(self, ctx: SamplerContext) -> None:
        from gantoolkit.sampling.refine import LatentRefiner

        real = ctx.training_data() if self.critic_steps else None
        self.sampler = LatentRefiner(ctx.model, self.refine_steps, self.refine_rate, ctx.seed, ctx.class_index,
                                     ctx.truncation, self.critic_steps, real)

    def sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.sampler(n, seed)

    def describe(self) -> str:
        return self.sampler.describe()
