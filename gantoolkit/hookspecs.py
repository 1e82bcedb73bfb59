"""The plugin contract: one hook per component kind.

Every hook receives a `register` callable; an implementation calls it once per component:

    register(name, factory, summary="one line", argument=None)

`factory(**options)` builds the component; its keyword parameters (with type hints and defaults) are the options
users set with `--<kind>-opt key=value` or in a TOML config. `factory` may also be a string "module:attribute",
imported only when the component is used, which keeps `gantool --help` fast. Datasets may set `argument` (e.g.
"PATH") to accept `name:ARGUMENT`.

Hooks may gain keyword arguments in later versions; pluggy lets an implementation accept only those it names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("gantoolkit")

Register = Callable[..., None]


@hookspec
def register_architectures(register: Register) -> None:
    """Register `gantoolkit.components.Architecture` factories (`--arch NAME`)."""


@hookspec
def register_losses(register: Register) -> None:
    """Register `gantoolkit.components.Loss` factories (`--loss NAME`)."""


@hookspec
def register_conditionings(register: Register) -> None:
    """Register `gantoolkit.components.Conditioning` factories (`--cond NAME`)."""


@hookspec
def register_controllers(register: Register) -> None:
    """Register controllers: training regularizers (`--controller NAME`) and latent-space editors."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register `gantoolkit.data.DataSource` factories (`--data NAME` or `--data NAME:ARGUMENT`)."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register metric factories (`gantool evaluate --metrics NAME,...`)."""


@hookspec
def register_configs(register: Register) -> None:
    """Register named presets: `register(name, values: dict, summary=...)`, used as `--config NAME`."""


@hookspec
def register_commands(register: Register) -> None:
    """Register CLI commands: `register(name, app_or_function, summary=..., panel=...)`.

    A `typer.Typer` becomes `gantool NAME SUBCOMMAND ...`; a function (Typer-style parameters) `gantool NAME ...`.
    Core command names (train, sample, info, export, list, plugins) cannot be taken.
    """


KIND_HOOKS: dict[str, str] = {
    "architecture": "register_architectures",
    "loss": "register_losses",
    "conditioning": "register_conditionings",
    "controller": "register_controllers",
    "dataset": "register_datasets",
    "metric": "register_metrics",
    "config": "register_configs",
    "command": "register_commands",
}

KIND_PLURALS = {
    "architecture": "architectures", "loss": "losses", "conditioning": "conditionings", "controller": "controllers",
    "dataset": "datasets", "metric": "metrics", "config": "configs", "command": "commands",
}

KIND_ALIASES: dict[str, str] = {
    **{k: k for k in KIND_HOOKS},
    **{plural: k for k, plural in KIND_PLURALS.items()},
    "arch": "architecture",
    "archs": "architecture",
    "cond": "conditioning",
    "conds": "conditioning",
    "data": "dataset",
}


def hook_signature() -> dict[str, Any]:
    """Hook name -> docstring, for `gantool plugins --hooks` and the plugin guide's tests."""
    return {name: globals()[name].__doc__ for name in KIND_HOOKS.values()}
