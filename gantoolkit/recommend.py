"""Composing a new run's configuration: built-in defaults < what the data source recommends for the chosen parts <
preset or TOML file < command-line flags (component options last, from `--<kind>-opt`).

A data source knows what suits its data (the embedded 8×8 digits train best small and short); the user's settings
always win. Torch-free at import: the data source is looked up only when a run is composed.
"""

from __future__ import annotations

from typing import Any

from gantoolkit.config import COMPONENT_FIELDS, Choice, RunConfig, apply_layer
from gantoolkit.errors import ConfigError
from gantoolkit.options import parse_assignments

Layer = tuple[dict[str, Any], str]


def compose(layers: list[Layer], opts: dict[str, list[str]] | None = None) -> tuple[RunConfig, dict[str, Any]]:
    """The run configuration `layers` (lowest first) and `opts` make, on top of the data source's recommendation
    for the parts they choose. Returns it with the recommended settings that are in effect (for the banner)."""
    opts = opts or {}
    chosen = _apply(RunConfig(), layers, opts)
    advice = recommendation(chosen)
    if not advice:
        return chosen, {}
    config = _apply(apply_layer(RunConfig(), advice, f"{chosen.data.name}'s recommendation"), layers, opts)
    return config, in_effect(advice, config)


def _apply(base: RunConfig, layers: list[Layer], opts: dict[str, list[str]]) -> RunConfig:
    config = base
    for layer, source in layers:
        config = apply_layer(config, layer, source)
    merge_component_options(config, opts)
    return config


def recommendation(config: RunConfig) -> dict[str, Any]:
    """What the chosen data source recommends for this combination of parts (a config layer, maybe empty).
    Component tables in it apply only to the component they name."""
    from gantoolkit.registry import get_registry

    spec, _ = get_registry().get("dataset", config.data.name)
    recommend = getattr(spec.create(config.data.options), "recommend", None)
    advice = recommend(config) if callable(recommend) else {}
    if not isinstance(advice, dict):
        raise ConfigError(f"dataset {config.data.name!r} recommended {type(advice).__name__}, not a table of settings",
                          "its plugin breaks the data-source contract")
    return {k: v for k, v in advice.items() if k not in COMPONENT_FIELDS or _same_part(v, getattr(config, k))}


def _same_part(value: Any, choice: Choice) -> bool:
    name = value.get("name") if isinstance(value, dict) else value
    return name == choice.name


def in_effect(advice: dict[str, Any], config: RunConfig) -> dict[str, Any]:
    """The recommended settings that the final configuration still holds, flattened (`arch.ngf`, `steps`, ...)."""
    out: dict[str, Any] = {}
    for key, value in advice.items():
        if key in COMPONENT_FIELDS and isinstance(value, dict):
            options = getattr(config, key).options
            for option, wanted in value.items():
                if option != "name" and options.get(option) == wanted:
                    out[f"{key}.{option}"] = wanted
        elif getattr(config, key, None) == value:
            out[key] = value
    return out


def merge_component_options(config: RunConfig, opts: dict[str, list[str]]) -> None:
    """Apply `--arch-opt`, `--loss-opt`, `--cond-opt`, `--data-opt` and `--controller-opt` assignments."""
    for key in COMPONENT_FIELDS:
        getattr(config, key).options.update(parse_assignments(opts.get(key, []), f"--{key}-opt"))
    names = [c.name for c in config.controllers]
    for item in opts.get("controller", []):
        target, dot, rest = item.partition(".")
        if dot and "=" not in target:
            if target not in names:
                raise ConfigError(f"--controller-opt names {target!r}, which is not a --controller of this run")
            assignment = rest
        elif len(names) == 1:
            target, assignment = names[0], item
        else:
            raise ConfigError("--controller-opt needs NAME.KEY=VALUE", "name the controller it is for")
        choice = config.controllers[names.index(target)]
        choice.options.update(parse_assignments([assignment], "--controller-opt"))
