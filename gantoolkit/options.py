"""Component options: read from a factory's signature, given as strings or TOML values, checked and typed."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gantoolkit.errors import ConfigError, did_you_mean

_MISSING = inspect.Parameter.empty


@dataclass(frozen=True)
class OptionInfo:
    name: str
    annotation: Any
    default: Any

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def describe(self) -> str:
        kind = type_name(self.annotation)
        return f"{self.name}: {kind}" + ("" if self.required else f" = {self.default!r}")


def option_schema(factory: Callable[..., Any]) -> dict[str, OptionInfo]:
    """The keyword options a factory accepts, with their types and defaults."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolved forward references: fall back to raw annotations
        hints = {}
    out: dict[str, OptionInfo] = {}
    for p in inspect.signature(factory).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self":
            continue
        annotation = hints.get(p.name, p.annotation if p.annotation is not _MISSING else Any)
        out[p.name] = OptionInfo(p.name, annotation, p.default)
    return out


#: the commas of "a=1,b=2" that start another KEY=VALUE pair
_PAIRS = re.compile(r",(?=\s*[A-Za-z_][\w-]*\s*=)")


def parse_assignments(items: Iterable[str], what: str) -> dict[str, str]:
    """["a=1", "b=x"] -> {"a": "1", "b": "x"}; `what` names the flag in errors. One item may hold several pairs,
    "r1=1,r2=1": a comma starts a new pair only before KEY=, so values with commas ("betas=0,0.9") stay whole."""
    out: dict[str, str] = {}
    for item in (piece for entry in items for piece in _PAIRS.split(entry)):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} expects KEY=VALUE, got {item!r}", "for example ngf=32")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def inline_options(value: str, flag: str) -> tuple[str, list[str]]:
    """`NAME[:KEY=VALUE,...]` -> (NAME, ["KEY=VALUE", ...]). A comma-separated piece without "=" continues the
    value before it, so `diffaug:policy=color,translation` is one option."""
    name, sep, rest = value.partition(":")
    if not name.strip():
        raise ConfigError(f"{flag} needs a name, got {value!r}")
    items: list[str] = []
    for piece in rest.split(",") if sep and rest.strip() else []:
        if "=" in piece:
            items.append(piece.strip())
        elif items:
            items[-1] += "," + piece.strip()
        else:
            raise ConfigError(f"{flag} expects NAME[:KEY=VALUE,...], got {value!r}",
                              f"for example {flag} {name.strip()}:KEY=VALUE")
    return name.strip(), items


def type_name(annotation: Any) -> str:
    if annotation is Any or annotation is _MISSING:
        return "any"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Turn a string (from the CLI) or a TOML value into `annotation`'s type, or raise ConfigError."""
    if annotation is Any or annotation is _MISSING:
        return value
    if _is_union(annotation):
        members = typing.get_args(annotation)
        if type(None) in members and (value is None or (isinstance(value, str) and value.lower() in ("none", ""))):
            return None
        errors = []
        for member in (m for m in members if m is not type(None)):
            try:
                return coerce(value, member, where)
            except ConfigError as e:
                errors.append(e.message)
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        for choice in choices:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ConfigError(f"{where} must be one of {', '.join(map(str, choices))}, got {value!r}")
    if origin in (tuple, list):
        items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{where} expects a comma-separated list, got {value!r}")
        args = typing.get_args(annotation)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(items) != len(args):
                raise ConfigError(f"{where} expects {len(args)} comma-separated values, got {value!r}")
            return tuple(coerce(v, a, where) for v, a in zip(items, args, strict=True))
        item_type = args[0] if args else Any
        return origin(coerce(v, item_type, where) for v in items)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} expects true or false, got {value!r}")
    if annotation in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{where} expects a number, got {value!r}")
        try:
            number = annotation(value) if not isinstance(value, str) else annotation(value.strip())
        except (ValueError, OverflowError):
            if annotation is int:
                try:
                    as_float = float(value)
                except (ValueError, OverflowError):
                    as_float = None
                if as_float is not None and as_float.is_integer():
                    return int(as_float)
            raise ConfigError(f"{where} expects {annotation.__name__}, got {value!r}") from None
        if annotation is int and not isinstance(value, str) and number != value:
            raise ConfigError(f"{where} expects a whole number, got {value!r}")
        if annotation is float and number != number:  # NaN
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return number
    if annotation is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where} expects text, got {value!r}")
        return str(value)
    return value


def bind_options(factory: Callable[..., Any], options: dict[str, Any], component: str) -> dict[str, Any]:
    """Check `options` against the factory's signature and convert each value to its declared type."""
    schema = option_schema(factory)
    accepts_any = any(
        p.kind == p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values()
    )
    bound: dict[str, Any] = {}
    for key, value in options.items():
        info = schema.get(key)
        if info is None:
            if accepts_any:
                bound[key] = value
                continue
            known = ", ".join(sorted(schema)) or "none"
            raise ConfigError(
                f"{component} has no option {key!r}", did_you_mean(key, schema) if schema else f"its options: {known}"
            )
        bound[key] = coerce(value, info.annotation, f"{component} option {key}")
    missing = [name for name, info in schema.items() if info.required and name not in bound]
    if missing:
        raise ConfigError(f"{component} needs the option(s) {', '.join(missing)}", "set them with KEY=VALUE")
    return bound


def _json_simple(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_json_simple(v) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and _json_simple(v) for k, v in value.items())


def resolve_options(factory: Callable[..., Any], options: dict[str, Any], component: str) -> dict[str, Any]:
    """`bind_options`, plus the default of every option not given, in the signature's order: what the component is
    built with, for a checkpoint to record. A default that JSON cannot hold, or that its own annotation refuses (so
    it could not be read back), is left to the factory."""
    bound = bind_options(factory, options, component)
    resolved: dict[str, Any] = {}
    for name, info in option_schema(factory).items():
        if name in bound:
            resolved[name] = bound[name]
        elif not info.required and _json_simple(info.default):
            try:
                coerce(info.default, info.annotation, f"{component} option {name}")
            except ConfigError:
                continue
            resolved[name] = info.default
    return {**resolved, **bound}
