"""`--sampler`: how `gantool sample` and `gantool evaluate` draw from a checkpoint (plain, drs or refine)."""

from __future__ import annotations

from typing import Any

from gantoolkit.errors import ConfigError
from gantoolkit.sampling import LoadedGenerator

#: the names `--sampler` takes
SAMPLERS = ("plain", "drs", "refine")
REFINE_STEPS = 10
REFINE_RATE = 0.01


def check_sampler_options(sampler: str, drs_steps: int, refine_steps: int = REFINE_STEPS,
                          refine_rate: float = REFINE_RATE) -> None:
    """Refuse an unknown `--sampler` or an option it cannot use (before anything is loaded)."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown --sampler {sampler!r}", f"use one of {', '.join(SAMPLERS)}")
    if drs_steps < 0 or (drs_steps and sampler != "drs"):
        raise ConfigError(f"--drs-steps {drs_steps} needs --sampler drs and a count of at least 0")
    if refine_steps < 1:
        raise ConfigError(f"--refine-steps must be at least 1, got {refine_steps}")
    if not refine_rate > 0:
        raise ConfigError(f"--refine-rate must be positive, got {refine_rate}")


def critic_sampler(model: LoadedGenerator, sampler: str, seed: int = 0, drs_steps: int = 0,
                   refine_steps: int = REFINE_STEPS, refine_rate: float = REFINE_RATE,
                   class_index: int | None = None, truncation: float | None = None) -> Any:
    """The drs or refine sampler of a loaded model: call it with (n, seed); `describe()` names it."""
    if sampler == "drs":
        from gantoolkit.rejection import rejection_sampler

        return rejection_sampler(model, seed, drs_steps)
    from gantoolkit.refinement import LatentRefiner

    return LatentRefiner(model, refine_steps, refine_rate, seed, class_index, truncation)
