"""`--sampler NAME`: how `gantool sample` and `gantool evaluate` draw from a checkpoint, a registered kind
(`gantool list samplers`; the contract is `gantoolkit.components.Sampler`). Torch-free at import."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gantoolkit.errors import ConfigError

if TYPE_CHECKING:
    from gantoolkit.components import Sampler
    from gantoolkit.sampling.generator import LoadedGenerator

#: the sampler used when `--sampler` is not given
DEFAULT_SAMPLER = "plain"


def create_sampler(name: str | None, assignments: list[str] | None = None, **shorthands: Any) -> Sampler:
    """The sampler `--sampler NAME --sampler-opt KEY=VALUE ...` names, its options checked before anything is
    loaded. `shorthands` are the commands' flags for options (`--critic-steps N` is `--sampler-opt critic_steps=N`);
    those left at None are not given."""
    from gantoolkit.components import Sampler
    from gantoolkit.options import parse_assignments
    from gantoolkit.registry import get_registry

    name = name or DEFAULT_SAMPLER
    spec, _ = get_registry().get("sampler", name)
    options: dict[str, Any] = parse_assignments(assignments or [], "--sampler-opt")
    known = spec.options()
    for key, value in shorthands.items():
        if value is None:
            continue
        if key not in known:
            listed = ", ".join(known) or "none"
            raise ConfigError(f"--{key.replace('_', '-')} does not apply to --sampler {name} (its options: {listed})",
                              f"see `gantool list samplers {name} --options`")
        options.setdefault(key, value)
    sampler = spec.create(options)
    if not isinstance(sampler, Sampler):
        raise ConfigError(f"sampler {name!r} built a {type(sampler).__name__}, not a gantoolkit Sampler",
                          "its plugin breaks the contract; see the plugin guide")
    return sampler


def setup_sampler(sampler: Sampler, model: LoadedGenerator, seed: int = 0, class_index: int | None = None,
                  truncation: float | None = None, data: str | None = None) -> Sampler:
    """`sampler` set up on a loaded generator, ready to be called with (n, seed); `data` is the command's --data."""
    from gantoolkit.components import SamplerContext

    sampler.setup(SamplerContext(model, seed, class_index, truncation, data))
    return sampler
