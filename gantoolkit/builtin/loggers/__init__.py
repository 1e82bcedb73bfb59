"""Built-in loggers (hookimpls only: no torch or tensorboard import here)."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_loggers(register):
    register("tensorboard", "gantoolkit.builtin.loggers.tensorboard:TensorBoardLogger",
             summary="TensorBoard event files in RUN/tb/: losses, learning rates, it/s, tracked metrics, sample "
                     "grids, the configuration (needs the tensorboard extra)")
