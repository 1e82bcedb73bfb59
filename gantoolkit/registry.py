"""The registry: every named component of every kind, who registered it, and how to build it."""

from __future__ import annotations

import fnmatch
import importlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gantoolkit.errors import PluginError, UnknownComponentError, did_you_mean
from gantoolkit.kinds import KINDS, kind_named
from gantoolkit.options import OptionInfo, bind_options, option_schema, resolve_options
from gantoolkit.plugins import PluginHost, PluginRecord, StrictPluginError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9._-]+)?$")

@dataclass
class ComponentSpec:
    """One registered name."""

    kind: str
    name: str
    factory: Any
    summary: str = ""
    argument: str | None = None
    plugin: str = ""
    distribution: str | None = None
    version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """The factory itself (imported now if it was registered as "module:attribute")."""
        if isinstance(self.factory, str):
            module_name, _, attr = self.factory.partition(":")
            try:
                target: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    target = getattr(target, part)
            except Exception as e:
                raise PluginError(
                    f"{self.kind} {self.name!r} from plugin {self.plugin!r} cannot be imported: {e}",
                    "reinstall that plugin or disable it with GANTOOL_DISABLE_PLUGINS",
                ) from e
            self.factory = target
        return self.factory

    def options(self) -> dict[str, OptionInfo]:
        factory = self.load()
        return option_schema(factory) if callable(factory) else {}

    def bind(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """`options` checked against the factory's signature and converted to the declared types."""
        return bind_options(self.load(), dict(options or {}), f"{self.kind} {self.name!r}")

    def resolve(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """`bind`, plus the default of every option not given: every option's value, as a checkpoint records it."""
        return resolve_options(self.load(), dict(options or {}), f"{self.kind} {self.name!r}")

    def create(self, options: dict[str, Any] | None = None) -> Any:
        return self.load()(**self.bind(options))

    def provenance(self) -> dict[str, Any]:
        return {"name": self.name, "plugin": self.plugin, "distribution": self.distribution, "version": self.version}


class Registry:
    """Names of every kind, gathered from every loaded plugin's hooks, each hook call isolated."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host
        self.specs: dict[str, dict[str, ComponentSpec]] = {kind: {} for kind in KINDS}
        self.clashes: dict[tuple[str, str], list[ComponentSpec]] = {}
        #: one line per third-party registration of a built-in name (ignored), for the CLI to warn with
        self.warnings: list[str] = []
        for kind in KINDS.values():
            self._collect(kind.name, kind.hook)

    @classmethod
    def load(cls) -> Registry:
        return cls(PluginHost().load())

    # -- building -------------------------------------------------------------------------------------------

    def _collect(self, kind: str, hook_name: str) -> None:
        """Call each plugin's implementation of `hook_name` on its own, passing only the arguments it names (as
        pluggy does: hooks may gain arguments later). Whatever it raises is recorded against its plugin."""
        for impl in getattr(self.host.pm.hook, hook_name).get_hookimpls():
            record = self.host.records.get(impl.plugin_name) or PluginRecord(impl.plugin_name, None, None, "?")
            offered = {"register": self._registrar(kind, record)}
            try:
                impl.function(*(offered[name] for name in impl.argnames))
            except StrictPluginError:  # GANTOOL_STRICT_PLUGINS=1: already names the plugin
                raise
            except (Exception, SystemExit) as e:  # a hook that exits must not end the tool either
                self.host.fail(record, f"{hook_name} raised {type(e).__name__}: {e}")

    def _registrar(self, kind: str, record: PluginRecord) -> Callable[..., None]:
        def register(
            name: str, factory: Any, summary: str = "", argument: str | None = None, **extra: Any
        ) -> None:
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                self.host.fail(record, f"registered an invalid {kind} name {name!r}")
                return
            spec = ComponentSpec(
                kind, name, factory, summary.strip().splitlines()[0] if summary.strip() else "", argument,
                record.name, record.distribution, record.version, extra,
            )
            self._add(spec, record)

        return register

    def _add(self, spec: ComponentSpec, record: PluginRecord) -> None:
        """File `spec` under its name. A third-party name that a built-in has is ignored and recorded (built-in
        names cannot be hijacked); a name two third-party plugins register is unusable until one is skipped."""
        key = (spec.kind, spec.name)
        existing = self.specs[spec.kind].get(spec.name)
        if existing is not None and self._builtin(existing) != record.builtin:
            builtin, other = (spec, existing) if record.builtin else (existing, spec)
            self.specs[spec.kind][spec.name] = builtin
            if builtin is spec:
                record.registered.append(key)
            self._ignore(builtin, other)
            return
        if key in self.clashes:
            self.clashes[key].append(spec)
        elif existing is not None:
            self.clashes[key] = [self.specs[spec.kind].pop(spec.name), spec]
        else:
            self.specs[spec.kind][spec.name] = spec
            record.registered.append(key)
            return
        owners = " and ".join(_owner(s) for s in self.clashes[key])
        self.host.fail(record, f"{spec.kind} name {spec.name!r} is registered by both {owners}")
        first_record = self.host.records.get(self.clashes[key][0].plugin)
        if first_record is not None and first_record is not record:
            first_record.errors.append(f"{spec.kind} name {spec.name!r} is also registered by {_owner(spec)}")

    def _builtin(self, spec: ComponentSpec) -> bool:
        record = self.host.records.get(spec.plugin)
        return record is not None and record.builtin

    def _ignore(self, builtin: ComponentSpec, other: ComponentSpec) -> None:
        """Record that `other` (a third-party registration) lost its name to the built-in `builtin`."""
        record = self.host.records.get(other.plugin)
        if record is not None and (other.kind, other.name) in record.registered:
            record.registered.remove((other.kind, other.name))
        message = (f"{other.kind} name {other.name!r} is built in ({builtin.plugin}); "
                   "this registration is ignored: choose another name")
        self.warnings.append(f"{_owner(other)} registers the built-in {other.kind} name {other.name!r}, which "
                             "keeps meaning the built-in (see `gantool plugins`)")
        if record is not None:
            self.host.fail(record, message)

    # -- lookups ----------------------------------------------------------------------------------------------

    @staticmethod
    def kind(kind: str) -> str:
        """Normalise a kind name ("archs" -> "architecture")."""
        return kind_named(kind).name

    def names(self, kind: str, pattern: str = "*") -> list[str]:
        kind = self.kind(kind)
        return sorted(n for n in self.specs[kind] if fnmatch.fnmatchcase(n, pattern))

    def list(self, kind: str, pattern: str = "*") -> list[ComponentSpec]:
        kind = self.kind(kind)
        return [self.specs[kind][n] for n in self.names(kind, pattern)]

    def get(self, kind: str, name: str) -> tuple[ComponentSpec, str | None]:
        """The spec for `name` and, for `base:argument` names, the argument."""
        kind = self.kind(kind)
        specs = self.specs[kind]
        if name in specs and not specs[name].argument:
            return specs[name], None
        base, sep, argument = name.partition(":")
        if sep and base in specs and specs[base].argument:
            return specs[base], argument
        for key in ((kind, name), (kind, base)):
            if key in self.clashes:
                owners = " and ".join(_owner(s) for s in self.clashes[key])
                raise PluginError(f"{kind} {key[1]!r} is registered by both {owners}",
                                  _choose_one(self.clashes[key]))
        if base in specs and sep:
            raise UnknownComponentError(f"{kind} {base!r} takes no argument, got {name!r}", f"use {_usage(kind, base)}")
        if base in specs and specs[base].argument:
            raise UnknownComponentError(
                f"{kind} {name!r} needs an argument", f"use {_usage(kind, f'{name}:{specs[base].argument}')}"
            )
        choices = [s.name + (f":{s.argument}" if s.argument else "") for s in specs.values()]
        hint = self._elsewhere(kind, base) or did_you_mean(name, choices) + self._unloaded()
        raise UnknownComponentError(f"unknown {kind} {name!r}", hint)

    def _elsewhere(self, kind: str, name: str) -> str:
        """A hint naming the other kinds that register `name` ("'sefa' is a finder: --method sefa"), or ""."""
        others = [KINDS[k] for k, specs in self.specs.items() if k != kind and name in specs and KINDS[k].flag]
        uses = ", ".join(f"a {other.name}: {other.flag} {name}" for other in others)
        return f"{name!r} is {uses}" if uses else ""

    def _unloaded(self) -> str:
        """A hint naming plugins that failed or were skipped (they may be where a missing name lives)."""
        records = self.host.records.values()
        failed = sorted(r.name for r in records if r.errors and not r.registered)
        disabled = sorted(r.name for r in records if r.disabled)
        hint = f"; plugin(s) {', '.join(failed)} failed to load (see `gantool plugins`)" if failed else ""
        return hint + (f"; plugin(s) {', '.join(disabled)} skipped by GANTOOL_DISABLE_PLUGINS" if disabled else "")

    def create(self, kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
        """Build a component by name. (Datasets take their `:argument` through `DataRequest`, see `get`.)"""
        spec, _ = self.get(kind, name)
        return spec.create(options)


def _usage(kind: str, name: str) -> str:
    """How a user names `name` of `kind`: "--data digits" (or just the name for kinds without a flag)."""
    flag = KINDS[kind].flag
    return f"{flag} {name}" if flag else name


def _choose_one(specs: list[ComponentSpec]) -> str:
    """How to keep one of several plugins that register one name: skip the others."""
    keep, *others = specs
    skip = ",".join(dict.fromkeys(s.plugin for s in others))
    return f"to use {keep.plugin!r}'s, set GANTOOL_DISABLE_PLUGINS={skip} (or uninstall all but one)"


def _owner(spec: ComponentSpec) -> str:
    dist = f" (distribution {spec.distribution})" if spec.distribution else ""
    return f"plugin {spec.plugin!r}{dist}"


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry.load()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the registry so the next `get_registry()` loads plugins again (tests, after installs)."""
    global _REGISTRY
    _REGISTRY = None


@contextmanager
def use_registry(registry: Registry) -> Iterator[Registry]:
    """Make `registry` the process-wide one inside the block (`gantoolkit.testing` and plugin tests)."""
    global _REGISTRY
    previous, _REGISTRY = _REGISTRY, registry
    try:
        yield registry
    finally:
        _REGISTRY = previous
