"""Loggers: where a run's numbers and pictures go besides `metrics.jsonl` (`--logger tensorboard`, a plugin's W&B).

A logger is a plugin kind (`register_loggers`). The trainer never calls one: `progress.Monitor`, which writes
metrics.jsonl on rank 0 only, hands the same records to a `Loggers` group, so loggers see what the log sees, when the
log sees it (every `--log-every` steps, outside the training step). A logger that raises is reported in one line on
stderr and switched off; training goes on. No torch here.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


class Logger:
    """What a logger receives. Every method is optional: the base class does nothing.

    - `start(run_dir, config, step)`: once, before the first record; `config` is the run's configuration as JSON
      (`RunConfig.to_json()`) plus `"components"` (each component's plugin and version); `step` is where this session
      starts (0, or the step a resumed run continues from: a logger should drop what it logged after it).
    - `scalars(step, values)`: a metrics.jsonl line's numbers: `loss_d`, `loss_g`, `penalty`, `lr_g`, `lr_d`,
      `it_per_s`, and each `--track` metric by its name.
    - `image(step, name, png)`: a sample grid just written (`name` is its file name in RUN/samples/, `png` its bytes).
    - `event(step, record)`: something that happened, such as a rollback (`record["event"] == "rollback"`).
    - `close()`: once, at the end of the session (also when it fails).
    - `command(run_dir)`: a command that shows what the logger writes, printed when training starts (None: none).
    """

    def command(self, run_dir: Path) -> str | None:
        """How to look at what this logger writes for the run in `run_dir` (e.g. `tensorboard --logdir RUN/tb`)."""
        return None

    def start(self, run_dir: Path, config: dict[str, Any], step: int) -> None:
        """The run begins (or resumes at `step`)."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Numbers logged at `step`."""

    def image(self, step: int, name: str, png: bytes) -> None:
        """A sample grid written at `step`."""

    def event(self, step: int, record: dict[str, Any]) -> None:
        """An event at `step` (a rollback)."""

    def close(self) -> None:
        """The session ends."""


class Loggers:
    """The loggers of one session, by name. Each call goes to every logger still on; one that raises is reported
    once (`warn`, one line) and switched off."""

    def __init__(self, loggers: dict[str, Logger], warn: Callable[[str], None] | None = None) -> None:
        self.active = dict(loggers)
        self.failed: dict[str, str] = {}
        self.warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))

    @classmethod
    def create(cls, names: Iterable[str], registry: Any = None) -> Loggers:
        """Build the named loggers through the registry (unknown names: a `ConfigError` with the closest names)."""
        if registry is None:
            from gantoolkit.registry import get_registry

            registry = get_registry()
        return cls({name: registry.create("logger", name) for name in dict.fromkeys(names)})

    def __bool__(self) -> bool:
        return bool(self.active)

    def _call(self, method: str, *args: Any) -> None:
        for name, logger in list(self.active.items()):
            try:
                getattr(logger, method)(*args)
            except Exception as e:  # a full disk, a bug in a plugin: reported once, then off
                del self.active[name]
                self.failed[name] = f"{type(e).__name__}: {e}"
                self.warn(f"warning: logger {name!r} failed in {method} ({self.failed[name]}); it is switched off "
                           "and training goes on (metrics.jsonl has every record)")
                if method != "close":
                    self._close_quietly(logger)

    @staticmethod
    def _close_quietly(logger: Logger) -> None:
        with contextlib.suppress(Exception):  # it already failed once; its first error was reported
            logger.close()

    def commands(self, run_dir: Path) -> list[str]:
        """What each logger says to run to see its output."""
        found = []
        for logger in self.active.values():
            try:
                line = logger.command(Path(run_dir))
            except Exception:  # a hint only: the logger's real calls report its failures
                line = None
            if line:
                found.append(line)
        return found

    def start(self, run_dir: Path, config: dict[str, Any], step: int) -> None:
        self._call("start", Path(run_dir), config, step)

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        numbers = {k: float(v) for k, v in values.items()
                   if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if numbers:
            self._call("scalars", step, numbers)

    def image(self, step: int, name: str, png: bytes) -> None:
        self._call("image", step, name, png)

    def event(self, step: int, record: dict[str, Any]) -> None:
        self._call("event", step, dict(record))

    def close(self) -> None:
        self._call("close")
        self.active.clear()
