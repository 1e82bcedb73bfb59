"""The `gantool` command line. `build_app()` returns a fresh Typer app (tests build their own)."""

from gantoolkit.cli.app import build_app, main

__all__ = ["build_app", "main"]
