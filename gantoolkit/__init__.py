"""gantoolkit: a plugin-based GAN toolkit for PyTorch.

Importing this package is cheap (no torch): the heavy parts load on first use.
"""

from __future__ import annotations

from typing import Any

import pluggy

__version__ = "0.1.0"

#: decorate plugin functions with this: `@gantoolkit.hookimpl def register_losses(register): ...`
hookimpl = pluggy.HookimplMarker("gantoolkit")

_LAZY = {
    "get_registry": "gantoolkit.registry",
    "load_generator": "gantoolkit.sampling",
    "load_checkpoint": "gantoolkit.checkpoint",
    "RunConfig": "gantoolkit.config",
    "train": "gantoolkit.training",
}

__all__ = ["__version__", "hookimpl", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gantoolkit' has no attribute {name!r}")
