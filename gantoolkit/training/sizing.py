"""Models this machine cannot hold are refused before they are built: their parameters are first counted on the
meta device (shapes only, nothing allocated), and an allocation that fails while they are built is one line too.

Widths come from flags (`--arch-opt ngf=...`) or from a checkpoint's saved configuration; either may be absurd.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from gantoolkit.config import Choice, RunConfig
from gantoolkit.errors import ConfigError

#: bytes of one parameter as the models are built (float32)
BYTES_PER_VALUE = 4
#: the most component options named in a refusal
SHOWN_OPTIONS = 4

T = TypeVar("T")


class ModelTooLargeError(ConfigError):
    """Models whose weights alone would not fit in the memory available."""


def available_memory() -> int | None:
    """Bytes of memory this process may still use: Linux's MemAvailable, lowered to what is left under a cgroup
    (container) limit; elsewhere the machine's physical memory; None when nothing says."""
    found: list[int] = []
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", "rb") as fh:
            limit = fh.read().strip()
        if limit.isdigit():
            with open("/sys/fs/cgroup/memory.current", "rb") as fh:
                found.append(max(0, int(limit) - int(fh.read().strip())))
    except (OSError, ValueError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (AttributeError, ValueError, OSError):
            return None
    return min(found)


def counted_values(build: Callable[[], Any]) -> float | None:
    """The parameters and buffers of the generator and critic `build()` makes, counted on the meta device (nothing
    is allocated and the random state is left as it was); `math.inf` when their sizes overflow what torch can
    address; None when the models cannot be built there (then only the real build can tell)."""
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            models = build()
    except RuntimeError as e:
        return math.inf if "overflow" in str(e).lower() else None
    except Exception:
        return None
    tensors = [t for m in (models.generator, models.critic) for t in (*m.parameters(), *m.buffers())]
    return float(sum(t.numel() for t in tensors))


def build_within_memory(build: Callable[[], T], config: RunConfig, registry: Any, hint: str) -> T:
    """`build()` (the models of `config`), refused with one line naming the settings when their weights cannot fit
    in the memory available: counted before anything is allocated, and an allocation that fails while building."""
    values = counted_values(build)
    if values is not None and math.isinf(values):
        raise ModelTooLargeError(f"{describe(config, registry)} makes models too large for any machine (their "
                                 f"sizes overflow 64 bits)", hint)
    available = available_memory()
    if values is not None and available is not None and values * BYTES_PER_VALUE > available:
        raise ModelTooLargeError(f"{describe(config, registry)} makes models of {values:,.0f} parameters "
                                 f"({_bytes(values * BYTES_PER_VALUE)} as float32), more than the "
                                 f"{_bytes(available)} of memory available", hint)
    try:
        return build()
    except (RuntimeError, MemoryError) as e:
        if not _failed_allocation(e):
            raise
        raise ModelTooLargeError(f"{describe(config, registry)} makes models too large for the memory available",
                                 hint) from None


def describe(config: RunConfig, registry: Any) -> str:
    """The settings that size the models: the architecture and its options that differ from their defaults, and the
    latent size ("architecture 'dcgan' with ngf=1000000000 and a latent size of 100")."""
    changed = _changed_options("architecture", config.arch, registry)
    shown = ", ".join(f"{k}={_short(v)}" for k, v in list(changed.items())[:SHOWN_OPTIONS])
    more = ", ..." if len(changed) > SHOWN_OPTIONS else ""
    options = f" with {shown}{more}" if shown else ""
    return f"architecture {_short(config.arch.name)!r}{options} and a latent size of {config.latent_dim:,}"


def _changed_options(kind: str, choice: Choice, registry: Any) -> dict[str, Any]:
    try:
        defaults = {name: info.default for name, info in registry.get(kind, choice.name)[0].options().items()}
    except Exception:  # an unknown component is refused by the build itself
        defaults = {}
    return {k: v for k, v in choice.options.items() if k not in defaults or defaults[k] != v}


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _failed_allocation(error: BaseException) -> bool:
    """A failed host or device allocation (torch says "can't allocate memory", "not enough memory", "out of
    memory", or raises MemoryError)."""
    text = str(error).lower()
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or any(
        phrase in text for phrase in ("can't allocate memory", "not enough memory", "out of memory",
                                      "defaultcpuallocator"))
