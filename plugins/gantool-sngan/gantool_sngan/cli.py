"""`gantool sngan ...`: diagnostics for spectrally normalised critics. Torch is imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="SNGAN diagnostics.", no_args_is_help=True)


@app.command()
def sigma(
    checkpoint: Annotated[Path, typer.Argument(metavar="CKPT|RUN", help="Checkpoint file or run directory.")],
) -> None:
    """The largest singular value of each spectrally normalised critic weight, raw and normalised (about 1)."""
    import torch

    from gantoolkit.errors import CheckpointError
    from gantoolkit.files.checkpoint import load_checkpoint
    from gantoolkit.files.runs import resolve_checkpoint

    ckpt = load_checkpoint(resolve_checkpoint(checkpoint))
    critic = ckpt.section("critic")
    suffix = ".parametrizations.weight.original"
    layers = sorted(k[: -len(suffix)] for k in critic if k.endswith(suffix))
    if not layers:
        raise CheckpointError(f"{ckpt.path} has no spectrally normalised critic layers", "train with --arch resnet-sn")
    typer.echo(f"{'layer':48} {'sigma(W)':>10} {'sigma(W/s)':>11}")
    for layer in layers:
        weight = critic[layer + suffix].float()
        u, v = critic[layer + ".parametrizations.weight.0._u"], critic[layer + ".parametrizations.weight.0._v"]
        matrix = weight.flatten(1) if weight.dim() > 1 else weight[None]
        estimate = torch.dot(u.float(), matrix @ v.float())
        raw = torch.linalg.matrix_norm(matrix, ord=2)
        typer.echo(f"{layer:48} {raw.item():10.4f} {(raw / estimate).item():11.4f}")
