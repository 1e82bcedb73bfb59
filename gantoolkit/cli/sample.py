"""`gantool sample`: draw from a trained generator into a PNG grid, a folder of PNGs, or `.npz`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gantoolkit.cli.options import CheckpointArg, DeviceOption, EmaOption, ForceOption

EPILOG = (
    "Examples:\n\n"
    "  gantool sample runs/digits --n 100 --out grid.png\n\n"
    "  gantool sample runs/digits --n 1000 --class 7 --out sevens.npz\n\n"
    "  gantool sample model.safetensors --n 16 --truncation 1.5 --out faces/\n\n"
    "  gantool sample runs/ring --n 2500 --sampler drs --critic-steps 2000 --out ring.npz\n"
    "  gantool sample runs/grid --n 2500 --sampler refine --critic-steps 2000 --out grid.npz\n\n"
    "  gantool sample runs/digits --direction dirs.safetensors:sefa0 --alphas -3,3 --steps 7 --out strip.png\n\n"
    "A .npz holds `images` (uint8 N×C×H×W) and `labels` (int64) — or `points` (float32 N×D) for vector data."
)


def register(app: typer.Typer) -> None:
    @app.command(epilog=EPILOG, rich_help_panel="Using a model")
    def sample(
        checkpoint: CheckpointArg,
        out: Annotated[Path, typer.Option("--out", "-o", help="FILE.png (grid), FILE.npz (arrays) or a folder of PNGs (new, empty, or one gantool sample filled: its PNGs are replaced).")],
        n: Annotated[Optional[int], typer.Option("--n", help="How many samples (default 64; with --direction: rows, default 8).")] = None,
        class_: Annotated[Optional[str], typer.Option("--class", help="Class index or name (conditional models); default: all classes evenly.")] = None,
        seed: Annotated[int, typer.Option(help="Latent seed: the same seed gives the same samples.")] = 0,
        truncation: Annotated[Optional[float], typer.Option(help="Redraw latent entries beyond ±T (fidelity over variety).")] = None,
        ema: EmaOption = True,
        device: DeviceOption = "cpu",
        direction: Annotated[Optional[str], typer.Option(metavar="FILE:NAME", help="Move each sample along a direction from `gantool directions`: one row per sample, one column per alpha.")] = None,
        alphas: Annotated[str, typer.Option(metavar="A,B", help="With --direction: from A to B in --steps (or list three or more values).")] = "-3,3",
        steps: Annotated[int, typer.Option(help="With --direction: columns from A to B.")] = 7,
        sampler: Annotated[Optional[str], typer.Option(metavar="NAME", help="How to draw (`gantool list samplers`): plain (default); drs (rejection by the critic) or refine (latents moved up the critic's gradient), both needing a training checkpoint.")] = None,
        sampler_opt: Annotated[Optional[list[str]], typer.Option(metavar="KEY=VALUE", help="Sampler option (repeatable; `gantool list samplers NAME --options`).")] = None,
        critic_steps: Annotated[Optional[int], typer.Option("--critic-steps", "--drs-steps", metavar="N", help="drs, refine: first train the critic on for N steps as a real-vs-generated classifier (--sampler-opt critic_steps=N).")] = None,
        refine_steps: Annotated[Optional[int], typer.Option(metavar="N", help="refine: gradient steps on each latent (default 10).")] = None,
        refine_rate: Annotated[Optional[float], typer.Option(metavar="R", help="refine: step size in latent space (default 0.01).")] = None,
        data: Annotated[Optional[str], typer.Option(help="drs, refine with --critic-steps: the real data to train the critic on (default: the model's training data; a folder must be given).")] = None,
        force: ForceOption = False,
    ) -> None:
        """Generate samples from a checkpoint."""
        from gantoolkit.errors import ConfigError
        from gantoolkit.files.images import sample_output, save_samples
        from gantoolkit.files.runs import resolve_checkpoint
        from gantoolkit.sampling.generator import load_generator
        from gantoolkit.sampling.samplers import create_sampler, setup_sampler

        n = n if n is not None else (8 if direction else 64)
        if n < 1:
            raise ConfigError(f"--n must be at least 1, got {n}")
        drawing = create_sampler(sampler, sampler_opt, critic_steps=critic_steps, refine_steps=refine_steps,
                                 refine_rate=refine_rate)
        if data is not None and sampler is None:
            raise ConfigError("--data is read only by a --sampler that trains on real data (drs, refine)",
                              "drop --data, or add --sampler drs --critic-steps N")
        if sampler is not None and direction is not None:
            raise ConfigError(f"--sampler {sampler} cannot be combined with --direction")
        direction_file = direction.rpartition(":")[0] if direction and ":" in direction else None
        target = sample_output(out, force, inputs=(resolve_checkpoint(checkpoint), direction_file))
        model = load_generator(checkpoint, device, prefer_ema=ema)
        class_index = model.class_index(class_) if class_ is not None else None
        cols: int | None
        if direction is not None:
            from gantoolkit.controllers.directions import direction_strip, parse_alphas

            samples, labels, cols = direction_strip(model, direction, parse_alphas(alphas, steps), n, seed, class_index, truncation)
            typer.echo("wrote " + save_samples(target, samples, labels, model.data, cols))
            return
        samples, labels = setup_sampler(drawing, model, seed, class_index, truncation, data)(n, seed)
        cols = model.data.num_classes if model.conditional and class_index is None and n >= model.data.num_classes else None
        typer.echo("wrote " + save_samples(target, samples, labels, model.data, cols))
