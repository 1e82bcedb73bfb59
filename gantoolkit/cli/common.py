"""Helpers shared by the commands: name completion from the registry, and a stderr console."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console


def complete(kind: str) -> Callable[[str], list[str]]:
    """Shell completion of registered names of `kind`."""

    def names(incomplete: str) -> list[str]:
        from gantoolkit.registry import get_registry

        try:
            specs = get_registry().list(kind)
        except Exception:
            return []
        out = [s.name + (":" if s.argument else "") for s in specs]
        return [n for n in out if n.startswith(incomplete)]

    return names


def err_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def out_console() -> Console:
    return Console(soft_wrap=True)


def printable(text: object) -> str:
    """`text` with control characters shown as escapes: what a file says can neither move the cursor, retitle the
    terminal, nor start a new line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))
