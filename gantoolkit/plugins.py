"""Plugin discovery: built-ins first, then each `gantoolkit` entry point loaded on its own.

Environment switches:
- GANTOOL_DISABLE_PLUGIN_AUTOLOAD=1: load only the built-ins (hermetic tests).
- GANTOOL_DISABLE_PLUGINS=a,b: skip these entry points (by entry-point or distribution name).
- GANTOOL_STRICT_PLUGINS=1: any plugin failure is an error instead of a recorded warning.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from gantoolkit import hookspecs
from gantoolkit.errors import PluginError, did_you_mean
from gantoolkit.kinds import hook_names

BUILTIN_PLUGINS: tuple[str, ...] = (
    "gantoolkit.builtin.archs",
    "gantoolkit.builtin.losses",
    "gantoolkit.builtin.conditionings",
    "gantoolkit.builtin.datasets",
    "gantoolkit.builtin.configs",
    "gantoolkit.builtin.controllers",
    "gantoolkit.builtin.metrics",
    "gantoolkit.builtin.loggers",
    "gantoolkit.builtin.augment",
    "gantoolkit.builtin.samplers",
    "gantoolkit.builtin.packing",
    "gantoolkit.builtin.demo",
)
ENTRY_POINT_GROUP = "gantoolkit"
BUILTIN_DISTRIBUTION = "gantoolkit"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def strict_plugins() -> bool:
    return _flag("GANTOOL_STRICT_PLUGINS")


class StrictPluginError(PluginError):
    """A plugin failure made fatal by GANTOOL_STRICT_PLUGINS=1 (already names the plugin; never recorded again)."""


def disabled_plugins() -> set[str]:
    return {p.strip() for p in os.environ.get("GANTOOL_DISABLE_PLUGINS", "").split(",") if p.strip()}


@dataclass
class PluginRecord:
    """One plugin as `gantool plugins` shows it."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    builtin: bool = False
    errors: list[str] = field(default_factory=list)
    registered: list[tuple[str, str]] = field(default_factory=list)
    #: skipped because GANTOOL_DISABLE_PLUGINS names it
    disabled: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "builtin": self.builtin,
            "errors": list(self.errors),
            "registered": [{"kind": k, "name": n} for k, n in self.registered],
            "disabled": self.disabled,
        }


def gantoolkit_version() -> str:
    from gantoolkit import __version__
    return __version__


def unknown_hooks(module: Any) -> list[str]:
    """Names of `@gantoolkit.hookimpl` functions in `module` that match no gantoolkit hook (typos)."""
    known = set(hook_names())
    out = []
    for attr in dir(module):
        try:
            value = getattr(module, attr)
        except Exception:
            continue
        if attr not in known and getattr(value, f"{ENTRY_POINT_GROUP}_impl", None) is not None:
            out.append(attr)
    return out


class PluginHost:
    """A pluggy PluginManager plus a record of every plugin, loaded or failed."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}

    def fail(self, record: PluginRecord, message: str) -> None:
        """Record a plugin failure (once: the app may be built again on the same registry); in strict mode, raise it."""
        if message not in record.errors:
            record.errors.append(message)
        if strict_plugins():
            where = f" (distribution {record.distribution})" if record.distribution else ""
            raise StrictPluginError(f"plugin {record.name!r}{where}: {message}",
                                    "unset GANTOOL_STRICT_PLUGINS to continue")

    def register_module(self, module: Any, record: PluginRecord) -> None:
        self.records[record.name] = record
        try:
            self.pm.register(module, name=record.name)
        except Exception as e:  # pluggy validates hook names and signatures here
            self.fail(record, f"cannot register: {e}")
            return
        for hook in unknown_hooks(module):  # pluggy would silently ignore a misspelt hook
            self.fail(record, f"defines @hookimpl {hook!r}, which is not a gantoolkit hook "
                              f"({did_you_mean(hook, hook_names())})")

    def load_builtins(self) -> None:
        version = gantoolkit_version()
        for module_name in BUILTIN_PLUGINS:
            module = importlib.import_module(module_name)
            record = PluginRecord(module_name, BUILTIN_DISTRIBUTION, version, module_name, builtin=True)
            self.register_module(module, record)

    def load_entry_points(self, force: bool = False) -> None:
        """Load every `gantoolkit` entry point (unless GANTOOL_DISABLE_PLUGIN_AUTOLOAD is set and not `force`)."""
        if _flag("GANTOOL_DISABLE_PLUGIN_AUTOLOAD") and not force:
            return
        disabled = disabled_plugins()
        seen: set[tuple[str, str]] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (ep.name, ep.value) in seen:
                continue
            seen.add((ep.name, ep.value))
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            name = ep.name if ep.name not in self.records else f"{dist}:{ep.name}"
            if ep.name in disabled or (dist is not None and dist in disabled):
                self.records[name] = PluginRecord(name, dist, version, ep.value, disabled=True)
                continue
            record = PluginRecord(name, dist, version, ep.value)
            self.records[name] = record
            try:
                module = ep.load()
            except (Exception, SystemExit) as e:  # a plugin that exits on import must not end the tool
                self.fail(record, f"failed to import {ep.value}: {type(e).__name__}: {e}")
                continue
            self.register_module(module, record)

    def load(self) -> PluginHost:
        self.load_builtins()
        self.load_entry_points()
        return self
