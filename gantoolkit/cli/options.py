"""Option declarations that several commands share (the built-in plugin commands use them too), so the same flag
reads the same in every command's help. Typer only: no torch here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gantoolkit.files.outputs import FORCE_HELP

#: a checkpoint file or a run directory (`resolve_checkpoint` takes its newest checkpoint)
CheckpointArg = Annotated[Path, typer.Argument(metavar="CKPT|RUN", help="Checkpoint file, or a run directory (its newest).")]
#: replace an output gantool did not write (see FORCE_HELP)
ForceOption = Annotated[bool, typer.Option("--force", help=FORCE_HELP)]
#: sample with the EMA generator when the checkpoint has one
EmaOption = Annotated[bool, typer.Option("--ema/--no-ema", help="Use the EMA generator when the checkpoint has one.")]
#: where a saved model runs (training takes its own --device, with auto as the default)
DeviceOption = Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")]
