"""What the user sees while training: a rich progress bar on a terminal, plain lines otherwise, and metrics.jsonl."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gantoolkit.files.runs import MetricsLog
from gantoolkit.loggers import Loggers

#: the live progress bar is redrawn when a step ends, at most this often (rich's own timer, 10 redraws a second
#: whatever happens, costs about 1.5% of a CPU core, and more per step when steps are slow)
MIN_REDRAW_S = 0.5
#: without a terminal (CI logs, nohup), a plain progress line comes this many seconds in, then after a tenth of
#: the time elapsed so far, at most a minute apart: a long run's log stays short, a short run's is never silent
PLAIN_FIRST_S = 5.0
PLAIN_MAX_GAP_S = 60.0
#: the plan line waits for this much time after the first step (the first is slow: allocation, warm-up), so that
#: the speed it states was measured
PLAN_AFTER_S = 2.0


def format_values(values: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in values.items())


def format_duration(seconds: float) -> str:
    """45 s, 4 min 10 s, 2 h 05 min."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Monitor:
    """Progress display plus the metrics log, and the loggers (`--logger`), which get every record the log gets.
    `advance` is called every step and does no I/O."""

    def __init__(self, metrics_path: Path, total: int, start: int, console: Console | None = None) -> None:
        self.metrics_path = metrics_path
        self.metrics = MetricsLog(metrics_path)
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
        self._first: tuple[int, float] | None = None  # (step, time) when the first step of this session ended
        self._planned = False
        self._values = ""
        self._next_line = self.t0 + PLAIN_FIRST_S
        #: the session's loggers (`training` sets them on rank 0's monitor and starts them); closed on exit
        self.loggers = Loggers({}, warn=lambda line: self.console.print(line, highlight=False, markup=False))

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
        self.loggers.close()

    def advance(self, step: int) -> None:
        """After each step: a clock read, and a redraw or a plain line only when one is due."""
        now = time.perf_counter()
        if self._first is None:
            self._first = (step, now)
        elif not self._planned and now - self._first[1] >= PLAN_AFTER_S and step < self.total:
            self._planned = True
            self.note(self.plan(step, now))
        if self.progress is not None:
            self.progress.update(self.task, completed=step)
            if now - self._drawn >= MIN_REDRAW_S:
                self.progress.refresh()
                self._drawn = now
        elif now >= self._next_line and step < self.total:
            self._plain_line(step, now)

    def speed(self, step: int, now: float) -> float:
        """Steps per second since the first step of this session ended (0 before there is a measurement)."""
        if self._first is None or step <= self._first[0]:
            return 0.0
        return (step - self._first[0]) / max(now - self._first[1], 1e-9)

    def plan(self, step: int, now: float) -> str:
        """One line: how many steps remain and how long they will take at the speed measured so far."""
        rate = self.speed(step, now)
        left = self.total - step
        measured = step - (self._first[0] if self._first else step)
        eta = f"about {format_duration(left / rate)} more" if rate > 0 else "time unknown"
        return (f"plan: {self.total - self.start_step} steps ({self.start_step} -> {self.total}), {eta} at "
                f"{rate:.2f} it/s (measured on {measured} steps)")

    def _plain_line(self, step: int, now: float) -> None:
        rate = self.speed(step, now)
        eta = f"ETA {format_duration((self.total - step) / rate)}" if rate > 0 and step < self.total else ""
        parts = [f"step {step}/{self.total}", self._values, f"{rate:.2f} it/s" if rate else "", eta]
        print("  ".join(p for p in parts if p), file=sys.stderr, flush=True)
        elapsed = now - self.t0
        self._next_line = now + min(PLAIN_MAX_GAP_S, max(PLAIN_FIRST_S, elapsed / 10))

    def log(self, step: int, values: dict[str, float]) -> None:
        now = time.perf_counter()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_step = now, step
        record = {"step": step, **values, "it_per_s": round(rate, 3), "elapsed_s": round(now - self.t0, 3)}
        self.metrics.append(record)
        self.loggers.scalars(step, record)
        self._values = format_values({k: v for k, v in values.items() if not k.startswith("lr_")})
        if self.progress is not None:
            self.progress.update(self.task, values=self._values, rate=f"{rate:.1f} it/s", refresh=True)
        elif step >= self.total:  # the last line, with the last losses
            self._plain_line(step, now)

    def rewind(self, record: dict[str, Any]) -> None:
        """Training went back to `record["step"]` (a rollback): the log's later lines go, `record` is written in
        their place and handed to the loggers, and the display and speed continue from that step."""
        step = int(record["step"])
        self.metrics.truncate_after(step)
        self.metrics.append(record)
        self.loggers.event(step, record)
        self.last_step = step
        self.advance(step)

    def image(self, step: int, name: str, png: bytes) -> None:
        """A sample grid was written (RUN/samples/NAME): to the loggers."""
        self.loggers.image(step, name, png)

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False)
