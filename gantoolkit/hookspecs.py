"""The plugin contract: one hook per component kind.

Every hook receives a `register` callable; an implementation calls it once per component:

    register(name, factory, summary="one line", argument=None)

`factory(**options)` builds the component; its keyword parameters (with type hints and defaults) are the options
users set with `--<kind>-opt key=value` or in a TOML config. `factory` may also be a string "module:attribute",
imported only when the component is used, which keeps `gantool --help` fast. Datasets may set `argument` (e.g.
"PATH") to accept `name:ARGUMENT`.

Hooks may gain keyword arguments in later versions; an implementation is passed only the arguments it names.
Each kind's hook, plural, aliases, flag and base class are in `gantoolkit.kinds.KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable

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
    """Register `gantoolkit.components.TrainingController` factories: regularizers applied while training
    (`--controller NAME`)."""


@hookspec
def register_direction_finders(register: Register) -> None:
    """Register `gantoolkit.components.DirectionFinder` factories (`gantool directions --method NAME`). A controller
    that also finds directions (InfoGAN: its own codes) registers under both hooks."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register `gantoolkit.data.DataSource` factories (`--data NAME` or `--data NAME:ARGUMENT`)."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register metric factories (`gantool evaluate --metrics NAME,...`)."""


@hookspec
def register_samplers(register: Register) -> None:
    """Register `gantoolkit.components.Sampler` factories (`gantool sample/evaluate --sampler NAME`)."""


@hookspec
def register_loggers(register: Register) -> None:
    """Register `gantoolkit.loggers.Logger` factories (`gantool train --logger NAME[,NAME]`)."""


@hookspec
def register_augmentations(register: Register) -> None:
    """Register `gantoolkit.components.Augmentation` factories: what the critic's inputs go through while training
    (`gantool train --augment NAME`)."""


@hookspec
def register_configs(register: Register) -> None:
    """Register named presets: `register(name, values: dict, summary=...)`, used as `--config NAME`."""


@hookspec
def register_commands(register: Register) -> None:
    """Register CLI commands: `register(name, app_or_function, summary=..., panel=...)`.

    A `typer.Typer` becomes `gantool NAME SUBCOMMAND ...`; a function (Typer-style parameters) `gantool NAME ...`.
    Core command names (train, sample, info, export, list, plugins) cannot be taken.
    """
