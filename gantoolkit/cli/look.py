"""`gantool plot` and `gantool report`: a run's curves as a PNG, and one self-contained HTML page per run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gantoolkit.cli.options import ForceOption

PLOT_EPILOG = ("Examples:\n\n  gantool plot runs/digits --out curves.png\n\n"
               "  gantool plot runs/bce runs/wgan-gp --out compare.png   (several runs on shared axes)")
REPORT_EPILOG = "Examples:\n\n  gantool report runs/digits --out runs/digits/report.html"


def read_logs(run_dirs: list[Path]) -> list:
    """Each run's metrics.jsonl; a damaged line is a warning line on stderr naming it."""
    from gantoolkit.cli.app import error_line
    from gantoolkit.curves import read_log

    logs = [read_log(run) for run in run_dirs]
    for log in logs:
        for warning in log.warnings:
            error_line(warning, prefix="warning")
    return logs


def register(app: typer.Typer) -> None:
    @app.command(epilog=PLOT_EPILOG, rich_help_panel="Looking at runs")
    def plot(
        run: Annotated[list[Path], typer.Argument(metavar="RUN [RUN ...]", help="Run directories (several: on shared axes).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="The PNG to write.")] = Path("curves.png"),
        force: ForceOption = False,
    ) -> None:
        """Draw a run's curves: losses (smoothed; raw values faint), penalty, learning rates, it/s, tracked metrics, rollbacks."""
        from gantoolkit.curves import plot_png
        from gantoolkit.errors import ConfigError
        from gantoolkit.files.outputs import PNG, Output
        from gantoolkit.files.runs import METRICS

        if out.suffix.lower() != ".png":
            raise ConfigError(f"--out must end in .png, got {str(out)!r}")
        target = Output.of(out, PNG, force, inputs=[r / METRICS for r in run]).check()
        logs = read_logs(run)
        target.write(plot_png(logs))
        typer.echo(f"wrote {out} ({len(logs)} run{'s' if len(logs) > 1 else ''})")

    @app.command(epilog=REPORT_EPILOG, rich_help_panel="Looking at runs")
    def report(
        run: Annotated[Path, typer.Argument(metavar="RUN", help="Run directory.")],
        out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The HTML page to write (default RUN/report.html).")] = None,
        force: ForceOption = False,
    ) -> None:
        """One self-contained HTML page about a run: what it is, its curves, its samples through training, its evaluation."""
        from gantoolkit.errors import ConfigError
        from gantoolkit.files.outputs import HTML, Output
        from gantoolkit.files.runs import METRICS
        from gantoolkit.report import build_report

        out = out if out is not None else run / "report.html"
        if out.suffix.lower() != ".html":
            raise ConfigError(f"--out must end in .html, got {str(out)!r}")
        target = Output.of(out, HTML, force, inputs=[run / METRICS]).check()
        (log,) = read_logs([run])
        target.write(build_report(run, log, _summary(run)))
        typer.echo(f"wrote {out}")


def _summary(run: Path) -> dict | None:
    """The newest checkpoint's summary, None when the run has no checkpoint yet."""
    from gantoolkit.files.checkpoint import load_checkpoint
    from gantoolkit.files.runs import list_checkpoints

    found = list_checkpoints(run)
    if not found:
        return None
    ckpt = load_checkpoint(found[-1][1])
    return {**ckpt.summary(), "config": ckpt.config.to_json(), "data": ckpt.data.to_json(), "step": ckpt.step,
            "components": ckpt.components, "torch_version": ckpt.meta.get("torch_version")}
