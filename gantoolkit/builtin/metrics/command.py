"""`gantool evaluate`: score a trained generator offline and write a flat JSON report (no torch import here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gantoolkit.cli.options import CheckpointArg, DeviceOption, EmaOption, ForceOption

EPILOG = (
    "Examples:\n\n"
    "  gantool evaluate runs/digits --out report.json\n\n"
    "  gantool evaluate runs/ring --data toy:ring --metrics modes,hq,rkl --out ring.json\n\n"
    "  gantool evaluate runs/faces --data folder:~/faces --features inception:~/inception_v3.pth --out faces.json\n\n"
    "  gantool evaluate runs/ring --sampler drs --critic-steps 2000 --out ring-drs.json\n\n"
    "  gantool evaluate runs/grid --sampler refine --critic-steps 2000 --out grid-refine.json\n\n"
    "Without --metrics every metric that applies is computed (see `gantool list metrics`). Features for fd, kid "
    "and the manifold metrics: auto (vectors: the data; labelled images: a classifier trained on them, cached), raw, "
    "classifier[:PATH] or inception:PATH. Nothing is downloaded."
)


OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Report file (.json); artefacts go beside it "
                                      "(REPORT.nn.png).")]
DataOpt = Annotated[Optional[str], typer.Option(help="Data to compare with (default: the model's training data, "
                                                 "unless its checkpoint names a path: then give it, folder:PATH).")]
MetricsOpt = Annotated[Optional[str], typer.Option(metavar="LIST", help="Comma-separated metrics (default: all).")]
NOpt = Annotated[Optional[int], typer.Option("--n", help="Samples (default 2,500 for vectors, 26,000 for "
                                            "stacked-digits, else 10,000).")]
FeaturesOpt = Annotated[str, typer.Option(metavar="SPEC", help="auto, raw, classifier[:PATH] or inception:PATH.")]
SeedOpt = Annotated[int, typer.Option(help="Latent seed of the generated samples.")]
SamplerOpt = Annotated[Optional[str], typer.Option(metavar="NAME", help="How to draw (`gantool list samplers`): plain "
                                                   "(default); drs (rejection by the critic) or refine (latents moved "
                                                   "up the critic's gradient).")]
SamplerOptionOpt = Annotated[Optional[list[str]], typer.Option(metavar="KEY=VALUE", help="Sampler option (repeatable; "
                                                               "`gantool list samplers NAME --options`).")]
CriticStepsOpt = Annotated[Optional[int], typer.Option("--critic-steps", "--drs-steps", metavar="N",
                                                       help="drs, refine: first train the critic on for N steps as a "
                                                       "real-vs-generated classifier (Azadi et al.; 0: use it as "
                                                       "saved).")]
RefineStepsOpt = Annotated[Optional[int], typer.Option(metavar="N", help="refine: gradient steps on each latent "
                                                       "(default 10).")]
RefineRateOpt = Annotated[Optional[float], typer.Option(metavar="R", help="refine: step size in latent space "
                                                        "(default 0.01).")]


def evaluate(
    checkpoint: CheckpointArg,
    out: OutOpt,
    data: DataOpt = None,
    metrics: MetricsOpt = None,
    n: NOpt = None,
    features: FeaturesOpt = "auto",
    seed: SeedOpt = 0,
    ema: EmaOption = True,
    device: DeviceOption = "cpu",
    sampler: SamplerOpt = None,
    sampler_opt: SamplerOptionOpt = None,
    critic_steps: CriticStepsOpt = None,
    refine_steps: RefineStepsOpt = None,
    refine_rate: RefineRateOpt = None,
    force: ForceOption = False,
) -> None:
    """Score a generator: fd, kid, precision/recall, density/coverage, mode and class coverage, memorisation."""
    from gantoolkit.builtin.metrics.features import parse_features
    from gantoolkit.evaluation import evaluate_checkpoint, parse_metric_list
    from gantoolkit.sampling.samplers import create_sampler, setup_sampler

    spec = parse_features(features)  # a bad spec fails before anything is loaded
    drawing = create_sampler(sampler, sampler_opt, critic_steps=critic_steps, refine_steps=refine_steps,
                             refine_rate=refine_rate)

    def draw(model):
        return setup_sampler(drawing, model, seed, data=data)

    report = evaluate_checkpoint(checkpoint, data, parse_metric_list(metrics), n, features, out, seed, device, ema,
                                 sampler=draw, force=force, inputs=(spec.path,))
    print_report(report)
    typer.echo(f"wrote {out}")


def print_report(report: dict) -> None:
    from rich.table import Table

    from gantoolkit.cli.common import out_console

    meta = report["meta"]
    table = Table("metric", "value", title=f"{meta['checkpoint']} (step {meta['step']}) vs {meta['data']}, "
                  f"{meta['n']} samples, sampler {meta['sampler']}")
    for key, value in report.items():
        if key != "meta":
            table.add_row(key, "undefined" if value is None else f"{value:.6g}")
    console = out_console()
    console.print(table)
    if meta["features"]:
        console.print(f"features: {meta['features']}", highlight=False)
    for name, reason in meta["skipped"].items():
        console.print(f"skipped {name}: {reason}", highlight=False)
    for name, path in meta["artefacts"].items():
        console.print(f"{name}: {path}", highlight=False)
