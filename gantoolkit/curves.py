"""A run's curves: metrics.jsonl read back (damaged lines skipped, each named), and drawn with matplotlib.

`read_log(run)` needs no matplotlib; `plot_png(logs)` draws one panel per quantity (critic loss, generator loss,
penalty, learning rates, it/s, each tracked metric), each run in its own colour on shared axes, smoothed values
over the raw ones drawn faint, rollbacks as dashed lines. matplotlib is used without pyplot (a Figure on the Agg
canvas): headless, and safe in the demo's threads.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantoolkit.errors import RunDirectoryError
from gantoolkit.files import runs

#: the keys of a log line that are not a quantity to draw
NOT_DRAWN = {"step", "event", "elapsed_s", "amp_skipped", "bad_step", "rollback"}
#: panels in this order, then every other (tracked) quantity by name
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("critic loss", ("loss_d",)),
    ("generator loss", ("loss_g",)),
    ("penalty", ("penalty",)),
    ("learning rate", ("lr_g", "lr_d")),
    ("it/s", ("it_per_s",)),
)
#: the smoothing of drawn curves: an exponential moving average (debiased, as TensorBoard's) of this weight
SMOOTHING = 0.8


@dataclass
class RunLog:
    """The lines of one run's metrics.jsonl."""

    run: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.run.name or str(self.run)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one quantity, where it was logged and finite."""
        steps, values = [], []
        for record in self.records:
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                steps.append(int(record["step"]))
                values.append(float(value))
        return steps, values

    def quantities(self) -> list[str]:
        """Every quantity logged, in the order first seen."""
        found: dict[str, None] = {}
        for record in self.records:
            for key, value in record.items():
                if key not in NOT_DRAWN and isinstance(value, (int, float)) and not isinstance(value, bool):
                    found.setdefault(key, None)
        return list(found)

    def rollbacks(self) -> list[int]:
        return [int(e["step"]) for e in self.events if e.get("event") == "rollback"]

    def training_seconds(self) -> float:
        """The time spent training, summed over sessions (each session's clock starts at 0)."""
        total, last = 0.0, 0.0
        for record in self.records:
            elapsed = record.get("elapsed_s")
            if not isinstance(elapsed, (int, float)):
                continue
            if elapsed < last:  # a new session (a resume)
                total += last
            last = float(elapsed)
        return total + last


def read_log(run: Path) -> RunLog:
    """A run's metrics.jsonl. A line that is not a JSON object with an integer `step` is skipped, with a warning
    naming it; a run with no metrics at all is a `RunDirectoryError`."""
    run = Path(run)
    path = run / runs.METRICS
    if not run.is_dir():
        what = "does not exist" if not run.exists() else "is not a folder"
        raise RunDirectoryError(f"{str(run)!r} {what}", "give a run directory written by gantool train")
    if not path.is_file():
        raise RunDirectoryError(f"{str(run)!r} has no metrics ({runs.METRICS} is missing)",
                                "give a run directory written by gantool train, after its first logged step")
    log = RunLog(run)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or isinstance(record.get("step"), bool):
                    raise ValueError("not an object with a step")
                record["step"] = int(record["step"])
            except (ValueError, KeyError, TypeError, OverflowError):
                log.warnings.append(f"{path} line {number} is not a metrics record; skipped")
                continue
            (log.events if "event" in record else log.records).append(record)
    if not log.records:
        raise RunDirectoryError(f"{str(run)!r} has no metrics ({path} holds no logged step)",
                                "train the run past its first --log-every steps")
    return log


def smooth(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Debiased exponential moving average (TensorBoard's smoothing)."""
    out, last = [], 0.0
    for i, value in enumerate(values, start=1):
        last = last * weight + (1 - weight) * value
        out.append(last / (1 - weight**i))
    return out


def panels(logs: list[RunLog]) -> list[tuple[str, list[str]]]:
    """(title, keys) of every panel with something to show: the fixed ones, then each tracked metric."""
    present = {key for log in logs for key in log.quantities()}
    found = []
    for title, keys in PANELS:
        shown = [k for k in keys if k in present]
        if title == "penalty" and not any(v for log in logs for v in log.series("penalty")[1]):
            continue  # a loss without a penalty logs zeros
        if shown:
            found.append((title, shown))
    fixed = {k for _, keys in PANELS for k in keys}
    tracked = sorted({k for log in logs for k in log.quantities()} - fixed)
    return found + [(key, [key]) for key in tracked]


def plot_png(logs: list[RunLog], width: float = 11.0, dpi: int = 100) -> bytes:
    """The curves of one or several runs as PNG bytes, marked as written by gantool."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from gantoolkit.files.outputs import SOFTWARE

    shown = panels(logs)
    columns = 2 if len(shown) > 1 else 1
    rows = -(-len(shown) // columns)
    figure = Figure(figsize=(width, 2.8 * rows), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    colours = [f"C{i % 10}" for i in range(len(logs))]
    several = len(logs) > 1
    for index, (title, keys) in enumerate(shown):
        axes = figure.add_subplot(rows, columns, index + 1)
        for log, colour in zip(logs, colours, strict=True):
            for key, style in zip(keys, ("-", "--"), strict=False):
                steps, values = log.series(key)
                if not steps:
                    continue
                label = " ".join(p for p in (log.name if several else "", key if len(keys) > 1 else "") if p)
                if (key.startswith("loss") or key == "penalty") and len(values) > 2:
                    axes.plot(steps, values, style, color=colour, alpha=0.25, linewidth=0.8)
                    values = smooth(values)
                axes.plot(steps, values, style, color=colour, linewidth=1.6, label=label or None)
            for step in log.rollbacks():
                axes.axvline(step, color=colour, linestyle=":", linewidth=1.2)
        if any(log.rollbacks() for log in logs):
            axes.plot([], [], ":", color="grey", label="rollback")
        if title == "learning rate" and all(v > 0 for log in logs for k in keys for v in log.series(k)[1]):
            axes.set_yscale("log")
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("step", fontsize=8)
        axes.tick_params(labelsize=8)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": SOFTWARE})
    return buffer.getvalue()
