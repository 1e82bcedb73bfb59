"""`gantool demo`: serve the Gradio demo of a checkpoint. No torch or gradio at module level (`gantool --help`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gantoolkit.cli.options import CheckpointArg, DeviceOption, EmaOption


def demo(
    checkpoint: CheckpointArg,
    directions: Annotated[Optional[list[Path]], typer.Option(
        "--directions", metavar="FILE", help="Directions file from `gantool directions` (repeatable): one slider "
                                             "per direction. Without it: the generator's codes and --auto-directions."
    )] = None,
    classifier: Annotated[Optional[Path], typer.Option(
        help="Classifier from `gantool classifier train`: enables \"more of this class\".")] = None,
    auto_directions: Annotated[str, typer.Option(
        help="Direction finder run on load when no --directions is given (gantool list finders); 'none' for "
             "none.")] = "sefa",
    num_directions: Annotated[int, typer.Option(help="How many directions --auto-directions finds.")] = 5,
    host: Annotated[str, typer.Option(help="Address to serve on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 7860,
    ema: EmaOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """Serve a page that edits the checkpoint's latent features: seed, class, truncation, direction sliders,
    interpolation, grid, classifier "more of", download, and the checkpoint's summary. Ctrl-C stops it."""
    from gantoolkit.errors import ConfigError

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    if not host.strip():
        raise ConfigError("--host is empty", "e.g. --host 127.0.0.1")
    check_address(host, port)  # before the model is loaded: a wrong host is named as such, not blamed on the port
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


def check_address(host: str, port: int) -> None:
    """Refuse a --host that is no host name or address of this machine, or a --port that cannot be served, naming
    which (the socket is closed again at once; the server binds it later)."""
    import errno
    import socket

    from gantoolkit.errors import ConfigError

    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError(f"--host {host!r} is not a host name or address ({reason})",
                          "e.g. --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface)") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is in use by another program", "choose another --port") \
                    from None
            if e.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(f"--host {host!r} is not an address of this machine ({e.strerror})",
                                  "give one of its addresses, e.g. --host 127.0.0.1") from None
            if e.errno == errno.EACCES:
                raise ConfigError(f"port {port} needs more privileges than this user has ({e.strerror})",
                                  "choose a --port from 1024 up") from None
            raise ConfigError(f"cannot serve on {host}:{port} ({e.strerror})", "choose another --port or --host") \
                from None
