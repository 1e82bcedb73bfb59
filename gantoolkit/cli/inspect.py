"""`gantool info` and `gantool export`: read a checkpoint's description; write a generator-only file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gantoolkit.outputs import FORCE_HELP


def _options(options: dict) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")" if options else ""


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel="Using a model")
    def info(
        checkpoint: Annotated[Path, typer.Argument(metavar="CKPT|RUN", help="Checkpoint file, or a run directory (its newest).")],
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Summarise a checkpoint: components, data, step, provenance."""
        from rich.table import Table
        from rich.text import Text

        from gantoolkit.checkpoint import load_checkpoint
        from gantoolkit.cli.common import out_console, printable
        from gantoolkit.runs import resolve_checkpoint

        ckpt = load_checkpoint(resolve_checkpoint(checkpoint))
        summary = ckpt.summary()
        if as_json:
            typer.echo(json.dumps(summary, indent=2, sort_keys=True))
            return
        cfg, data = ckpt.config, ckpt.data
        table = Table(title=Text(printable(ckpt.path)), show_header=False, title_justify="left")
        rows = [
            ("kind", ckpt.kind),
            ("step", f"{ckpt.step} of {cfg.steps}"),
            ("architecture", cfg.arch.name + _options(cfg.arch.options)),
            ("loss", cfg.loss.name + _options(cfg.loss.options)),
            ("conditioning", cfg.cond.name + _options(cfg.cond.options)),
            ("controllers", ", ".join(c.name + _options(c.options) for c in cfg.controllers) or "none"),
            ("augmentation", cfg.augment.name + _options(cfg.augment.options)),
            ("data", f"{data.source}  {data.modality} {'x'.join(map(str, data.shape))}"),
            ("classes", f"{data.num_classes}: {', '.join(data.class_names[:12])}" if data.num_classes else "none"),
            ("latent size", str(cfg.latent_dim)),
            ("EMA generator", "yes" if summary["ema"] else "no"),
            ("batch / seed", f"{cfg.batch_size} / {cfg.seed}"),
            ("written by", f"gantoolkit {summary['gantoolkit_version']} at {summary['created']}"),
        ]
        for key, value in ckpt.components.items():
            if isinstance(value, dict) and value.get("distribution") not in (None, "gantoolkit"):
                rows.append((f"plugin for {key}", f"{value['distribution']} {value.get('version') or ''}"))
        for key, value in rows:  # plain text: the checkpoint's strings are neither rich markup nor terminal codes
            table.add_row(Text(printable(key)), Text(printable(value)))
        out_console().print(table)

    @app.command(rich_help_panel="Using a model")
    def export(
        checkpoint: Annotated[Path, typer.Argument(metavar="CKPT|RUN", help="Checkpoint file, or a run directory (its newest).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="The generator-only .safetensors file to write (not in a run's checkpoints/ folder, where it would become the run's newest checkpoint).")],
        ema: Annotated[bool, typer.Option("--ema/--no-ema", help="Export the EMA weights when there are some.")] = True,
        force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    ) -> None:
        """Write a generator-only checkpoint (smaller; enough to sample, edit and serve the demo)."""
        from gantoolkit.checkpoint import GENERATOR_ONLY, load_checkpoint, prefixed, write_checkpoint
        from gantoolkit.errors import ConfigError
        from gantoolkit.outputs import GENERATOR, Output
        from gantoolkit.runs import resolve_checkpoint

        source = resolve_checkpoint(checkpoint)
        if out.suffix != ".safetensors":
            raise ConfigError(f"--out must end in .safetensors, got {str(out)!r}")
        target = Output.of(out, GENERATOR, force, inputs=(source,)).check()
        ckpt = load_checkpoint(source)
        meta = {k: v for k, v in ckpt.meta.items() if k in ("config", "data", "components", "step", "gantoolkit_version", "created", "torch_version")}
        meta["kind"] = GENERATOR_ONLY
        meta["exported_from"] = str(source)
        target.check()
        write_checkpoint(out, prefixed("generator", ckpt.generator_state(prefer_ema=ema)), meta)
        typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, generator at step {ckpt.step})")
