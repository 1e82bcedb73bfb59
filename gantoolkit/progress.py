"""What the user sees while training: a rich progress bar on a terminal, plain lines otherwise, and metrics.jsonl."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

#: the live progress bar is redrawn when a step ends, at most this often (rich's own timer, 10 redraws a second
#: whatever happens, costs about 1.5% of a CPU core, and more per step when steps are slow)
MIN_REDRAW_S = 0.5


def format_values(values: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in values.items())


class Monitor:
    """Progress display plus the metrics log. `advance` is called every step and does no I/O."""

    def __init__(self, metrics_path: Path, total: int, start: int, console: Console | None = None) -> None:
        self.metrics_path = metrics_path
        self.total = total
        self.start_step = start
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.t0 = time.perf_counter()
        self.last_time = self.t0
        self.last_step = start
        self.progress: Progress | None = None
        self.task: Any = None
        self._drawn = 0.0

    def __enter__(self) -> Monitor:
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]step"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.fields[values]}"),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=self.console,
                auto_refresh=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=self.total, completed=self.start_step, values="", rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def advance(self, step: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step)
            now = time.perf_counter()
            if now - self._drawn >= MIN_REDRAW_S:
                self.progress.refresh()
                self._drawn = now

    def log(self, step: int, values: dict[str, float]) -> None:
        now = time.perf_counter()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_step = now, step
        record = {"step": step, **values, "it_per_s": round(rate, 3), "elapsed_s": round(now - self.t0, 3)}
        with open(self.metrics_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        text = format_values(values)
        if self.progress is not None:
            self.progress.update(self.task, values=text, rate=f"{rate:.1f} it/s", refresh=True)
        else:
            left = (self.total - step) / rate if rate > 0 else float("inf")
            eta = f"ETA {int(left // 60)}m{int(left % 60):02d}s" if left != float("inf") else ""
            print(f"step {step}/{self.total}  {text}  {rate:.1f} it/s  {eta}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False)
