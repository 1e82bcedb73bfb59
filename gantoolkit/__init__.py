"""gantoolkit: a plugin-based GAN toolkit for PyTorch.

Importing this package is cheap (no torch): the heavy parts load on first use. The Python API:

    G = gantoolkit.load_generator("runs/x")      # a GeneratorModel (gantoolkit/api.py)
    images = G.sample(16, classes=7, seed=0)     # uint8 N×C×H×W
    run_dir = gantoolkit.train({"steps": 200})   # the run directory
"""

from __future__ import annotations

from typing import Any

import pluggy

__version__ = "0.1.0"

#: decorate plugin functions with this: `@gantoolkit.hookimpl def register_losses(register): ...`
hookimpl = pluggy.HookimplMarker("gantoolkit")

_LAZY = {
    "get_registry": "gantoolkit.registry",
    "load_generator": "gantoolkit.api",
    "GeneratorModel": "gantoolkit.api",
    "load_checkpoint": "gantoolkit.files.checkpoint",
    "RunConfig": "gantoolkit.config",
    "train": "gantoolkit.api",
}

__all__ = ["__version__", "hookimpl", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gantoolkit' has no attribute {name!r}")
