"""`--sampler`: how `gantool sample` and `gantool evaluate` draw from a checkpoint (plain, drs or refine)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gantoolkit.config import MAX_ITERATIONS
from gantoolkit.errors import ConfigError

if TYPE_CHECKING:  # the CLI reads the defaults below without importing torch
    from gantoolkit.sampling import LoadedGenerator

#: the names `--sampler` takes
SAMPLERS = ("plain", "drs", "refine")
REFINE_STEPS = 10
REFINE_RATE = 0.01


def check_sampler_options(sampler: str, critic_steps: int, refine_steps: int = REFINE_STEPS,
                          refine_rate: float = REFINE_RATE) -> None:
    """Refuse an unknown `--sampler` or an option it cannot use (before anything is loaded)."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown --sampler {sampler!r}", f"use one of {', '.join(SAMPLERS)}")
    if critic_steps < 0 or (critic_steps and sampler == "plain"):
        raise ConfigError(f"--critic-steps {critic_steps} needs --sampler drs or refine and a count of at least 0")
    if critic_steps > MAX_ITERATIONS:
        raise ConfigError(f"--critic-steps must be at most {MAX_ITERATIONS:,}, got {critic_steps:,}")
    if refine_steps < 1:
        raise ConfigError(f"--refine-steps must be at least 1, got {refine_steps}")
    if refine_steps > MAX_ITERATIONS:
        raise ConfigError(f"--refine-steps must be at most {MAX_ITERATIONS:,}, got {refine_steps:,}")
    if not refine_rate > 0:
        raise ConfigError(f"--refine-rate must be positive, got {refine_rate}")


def critic_sampler(model: LoadedGenerator, sampler: str, seed: int = 0, critic_steps: int = 0,
                   refine_steps: int = REFINE_STEPS, refine_rate: float = REFINE_RATE,
                   class_index: int | None = None, truncation: float | None = None) -> Any:
    """The drs or refine sampler of a loaded model: call it with (n, seed); `describe()` names it. With
    `critic_steps` the critic is first trained on, on the model's training data (loaded only then)."""
    real = None
    if critic_steps:
        from gantoolkit.evaluation import load_matching_data

        data = load_matching_data(model, None)
        real = (data.data, data.labels)
    if sampler == "drs":
        from gantoolkit.rejection import RejectionSampler

        return RejectionSampler(model, seed, critic_steps, real)
    from gantoolkit.refinement import LatentRefiner

    return LatentRefiner(model, refine_steps, refine_rate, seed, class_index, truncation, critic_steps, real)
