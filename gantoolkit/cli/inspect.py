"""`gantool info` and `gantool export`: read a checkpoint's description; write the generator as a generator-only
checkpoint, an ONNX model or a TorchScript module (gantoolkit/files/export.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gantoolkit.cli.options import CheckpointArg, EmaOption, ForceOption

if TYPE_CHECKING:
    from gantoolkit.files.outputs import Output

EXPORT_EPILOG = (
    "Examples:\n\n"
    "  gantool export runs/digits --out generator.safetensors\n\n"
    "  gantool export runs/digits --format onnx --out digits.onnx   (needs pip install 'gantoolkit[export]')\n\n"
    "  gantool export runs/digits --format torchscript --out digits.pt\n\n"
    "  gantool export runs/digits --format folder --out digits-model/   (model.safetensors, config.json, README.md)\n\n"
    "ONNX and TorchScript take z (float32 N×latent size), labels (int64 N, conditional models) and codes (float32, "
    "models with controller codes) and give samples in model space (images in [-1, 1]); the metadata says which."
)


def _options(options: dict) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")" if options else ""


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel="Using a model")
    def info(
        checkpoint: CheckpointArg,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Summarise a checkpoint: components, data, step, provenance."""
        from rich.table import Table
        from rich.text import Text

        from gantoolkit.cli.common import out_console, printable
        from gantoolkit.files.checkpoint import load_checkpoint
        from gantoolkit.files.runs import resolve_checkpoint

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

    @app.command(epilog=EXPORT_EPILOG, rich_help_panel="Using a model")
    def export(
        checkpoint: CheckpointArg,
        out: Annotated[Path, typer.Option("--out", "-o", help="The file to write: FILE.safetensors (not in a run's checkpoints/ folder, where it would become the run's newest checkpoint), FILE.onnx or FILE.pt; with --format folder, a new or empty folder.")],
        format: Annotated[Optional[str], typer.Option("--format", "-f", metavar="safetensors|onnx|torchscript|folder", help="What to write (default: from --out's suffix). safetensors: the generator-only checkpoint gantool reads; onnx and torchscript: a graph that runs without gantoolkit, checked against PyTorch before it is written; folder: model.safetensors, config.json and a README.md model card, as model hubs lay them out.")] = None,
        ema: EmaOption = True,
        opset: Annotated[int, typer.Option(help="onnx: the ai.onnx opset to target.")] = 17,
        force: ForceOption = False,
    ) -> None:
        """Export the generator: a generator-only checkpoint, an ONNX model, a TorchScript module or a model folder."""
        from gantoolkit.errors import ConfigError
        from gantoolkit.files.outputs import GENERATOR, MODEL_FOLDER, ONNX, TORCHSCRIPT, Output
        from gantoolkit.files.runs import resolve_checkpoint

        kinds = {"safetensors": (GENERATOR, ".safetensors"), "onnx": (ONNX, ".onnx"), "torchscript": (TORCHSCRIPT, ".pt"),
                 "folder": (MODEL_FOLDER, "")}
        if format is None:
            format = next((name for name, (_, suffix) in kinds.items() if out.suffix.lower() == suffix), None)
            if format is None:
                raise ConfigError(f"cannot tell the format from --out {str(out)!r}", "give --format safetensors, onnx, torchscript or folder, or end --out in .safetensors, .onnx or .pt")
        if format not in kinds:
            raise ConfigError(f"unknown --format {format!r}", "choose safetensors, onnx, torchscript or folder")
        kind, suffix = kinds[format]
        if format != "folder" and out.suffix.lower() != suffix:
            raise ConfigError(f"--format {format} writes a {suffix} file, but --out is {str(out)!r}", f"end --out in {suffix}")
        if not 7 <= opset <= 23:
            raise ConfigError(f"--opset must be between 7 and 23, got {opset}", "17 suits ONNX Runtime 1.14 and later")
        if format == "onnx":
            from gantoolkit.files.export import require_onnx

            require_onnx()  # before anything is loaded
        source = resolve_checkpoint(checkpoint)
        target = Output.of(out, kind, force, inputs=(source,)).check()
        if format == "safetensors":
            return write_generator_only(source, target, ema)
        from gantoolkit.files.export import export_onnx, export_torchscript
        from gantoolkit.sampling.generator import load_generator

        model = load_generator(source, "cpu", prefer_ema=ema)
        if format == "folder":
            from gantoolkit.files.model_folder import folder_files

            files = folder_files(model, source, ema)
            target.write_folder(files)
            typer.echo(f"wrote {out}/ ({', '.join(sorted(files))}; generator at step {model.checkpoint.step})")
            return
        exported = export_onnx(model, opset) if format == "onnx" else export_torchscript(model)
        target.write(exported.payload)
        typer.echo(f"wrote {out} ({len(exported.payload) / 1e6:.1f} MB, {format}, generator at step {model.checkpoint.step}); {exported.report}")


def write_generator_only(source: Path, target: Output, ema: bool) -> None:
    """`gantool export --format safetensors`: the checkpoint's generator and its description, nothing else."""
    from gantoolkit.files.checkpoint import GENERATOR_ONLY, load_checkpoint, prefixed, write_checkpoint

    out = target.path
    ckpt = load_checkpoint(source)
    meta = {k: v for k, v in ckpt.meta.items() if k in ("config", "data", "components", "step", "gantoolkit_version", "created", "torch_version")}
    meta["kind"] = GENERATOR_ONLY
    meta["exported_from"] = str(source)
    target.check()
    write_checkpoint(out, prefixed("generator", ckpt.generator_state(prefer_ema=ema)), meta)
    typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, generator at step {ckpt.step})")
