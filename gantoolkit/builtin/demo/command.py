"""`gantool demo`: serve the Gradio demo of a checkpoint. No torch or gradio at module level (`gantool --help`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def demo(
    checkpoint: Annotated[Path, typer.Argument(metavar="CKPT|RUN",
                                               help="Checkpoint file, or a run directory (its newest).")],
    directions: Annotated[Optional[list[Path]], typer.Option(
        "--directions", metavar="FILE", help="Directions file from `gantool directions` (repeatable): one slider "
                                             "per direction. Without it: the generator's codes and --auto-directions."
    )] = None,
    classifier: Annotated[Optional[Path], typer.Option(
        help="Classifier from `gantool classifier train`: enables \"more of this class\".")] = None,
    auto_directions: Annotated[str, typer.Option(
        help="Direction finder run on load when no --directions is given (gantool list controllers); 'none' for "
             "none.")] = "sefa",
    num_directions: Annotated[int, typer.Option(help="How many directions --auto-directions finds.")] = 5,
    host: Annotated[str, typer.Option(help="Address to serve on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 7860,
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help="Use the EMA generator when there is one.")] = True,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "cpu",
) -> None:
    """Serve a page that edits the checkpoint's latent features: seed, class, truncation, direction sliders,
    interpolation, grid, classifier "more of", download, and the checkpoint's summary. Ctrl-C stops it."""
    from gantoolkit.errors import ConfigError

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    if not host.strip():
        raise ConfigError("--host is empty", "e.g. --host 127.0.0.1")
    auto = None if auto_directions.strip().lower() in ("", "none") else auto_directions.strip()

    from gantoolkit.demo.engine import DemoEngine

    engine = DemoEngine.load(checkpoint, directions or [], classifier, auto, num_directions, device, ema)
    engine.warm_up()
    from gantoolkit.demo.app import build_blocks, launch

    typer.echo(f"demo of {engine.model.checkpoint.path} (step {engine.model.checkpoint.step}): "
               f"{'; '.join(engine.notes) or 'no directions'}", err=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: serving on {host}: anyone who can reach this address can use the demo", err=True)
    launch(build_blocks(engine), host, port)
