"""`--on-nan`: what a run does when a loss (or a weight) becomes NaN or infinite.

The trainer notices a non-finite loss only when it reads its device flag: at log, sample and checkpoint time, never
inside the training step. Then:

- `stop` (the default) ends the run with the first bad step named. Nothing is written after that step, so the newest
  checkpoint is the last good state, and `--resume` can continue from it (with a lower `--lr`, for example).
- `rollback` goes back to the last good state and goes on more carefully:
  * the last good state is the newest checkpoint of this session (its host copy is kept in memory when it is
    written), or the state the session started from (step 0, or the checkpoint it resumed);
  * the generator, critic, EMA and optimizer states and the step are restored from it, and the learning rates of
    both optimizers are halved (again at every rollback; the lowered rates are saved in later checkpoints, and
    `--lr-decay` goes on scaling the halved rates);
  * the data stream and the training RNG are *not* rewound: training goes on with the batches and latents that
    follow the ones that led to the NaN, so the bad stretch is skipped rather than replayed;
  * metrics.jsonl drops the lines of the discarded steps and gets an `"event": "rollback"` line; stderr gets a note;
  * after `MAX_ROLLBACKS` rollbacks without a checkpoint beyond the bad step, the run stops as with `stop`.
"""

from __future__ import annotations

import math
import shlex
import statistics
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from gantoolkit.errors import TrainingError
from gantoolkit.files.checkpoint import Checkpoint

if TYPE_CHECKING:
    from gantoolkit.training.progress import Monitor
    from gantoolkit.training.trainer import Trainer

MAX_ROLLBACKS = 3
LR_FACTOR = 0.5


class NonFiniteError(TrainingError):
    """A loss (or, at checkpoint time, a weight or an optimizer state) became NaN or infinite at `step`, or a loss
    exploded while staying finite (`problem` says which). The hint is a command that works: resuming with a lower
    `--lr` when a checkpoint was kept (`run_dir`), a new run otherwise."""

    def __init__(self, step: int, what: str, last_checkpoint: Path | None, problem: str = "became NaN or infinite",
                 run_dir: Path | None = None, lr: float | None = None) -> None:
        self.step, self.what, self.last_checkpoint, self.problem = step, what, last_checkpoint, problem
        lower = f"--lr {lr / 10:g}" if lr else "a lower --lr"
        if last_checkpoint is not None and run_dir is not None:
            hint = f"resume with a lower learning rate: gantool train --resume {shlex.quote(str(run_dir))} {lower}; " \
                   "or try another loss, or pass --on-nan rollback"
        else:
            hint = f"start a new run with {lower}, try another loss, or pass --on-nan rollback"
        super().__init__(f"{self.event}; training stopped and {_kept(last_checkpoint)}", hint)

    @property
    def event(self) -> str:
        """What went wrong and when, e.g. "a loss became NaN or infinite at step 5"."""
        return f"{self.what} {self.problem} at step {self.step}"


def _kept(last_checkpoint: Path | None) -> str:
    return f"the last good checkpoint {last_checkpoint} is kept" if last_checkpoint else "no checkpoint was written"


#: a logged loss beyond this magnitude has diverged, whatever came before (no working GAN loss comes near it)
EXPLODED = 1e8
#: ... and so has one beyond this many times (1 + the median magnitude of its earlier logged values)
EXPLODED_FACTOR = 1e4
#: the earlier logged values that median is taken over (the newest ones)
HISTORY = 100


class LossGuard:
    """Finds losses that exploded while staying finite (with `--lr 1e6` they reach 1e33 and Adam's state overflows).
    It reads the logged means, on the host where the losses are read anyway, never inside the training step; a loss
    that exploded is treated as a NaN would be (`--on-nan stop` or `rollback`)."""

    def __init__(self) -> None:
        self.history: dict[str, deque[tuple[int, float]]] = {}

    def bound(self, key: str) -> float:
        earlier = [abs(v) for _, v in self.history.get(key, ())]
        return min(EXPLODED, EXPLODED_FACTOR * (1 + statistics.median(earlier))) if earlier else EXPLODED

    def check(self, step: int, values: dict[str, float], remember: bool = True) -> tuple[str, str] | None:
        """(the loss, what happened to it) for the first loss in `values` beyond its bound, else None; values within
        bounds join the history when `remember` (logged means do; the partial means read before a checkpoint do
        not)."""
        losses = {k: v for k, v in values.items() if k.startswith("loss") and math.isfinite(v)}
        for key, value in losses.items():
            bound = self.bound(key)
            if abs(value) > bound:
                why = "its bound" if bound == EXPLODED else f"{EXPLODED_FACTOR:g} × (1 + the median of its last values)"
                return key, f"exploded to {value:.3g} (beyond {bound:.3g}, {why})"
        for key, value in losses.items() if remember else ():
            self.history.setdefault(key, deque(maxlen=HISTORY)).append((step, value))
        return None

    def forget_after(self, step: int) -> None:
        """Drop the values logged after `step` (a rollback discards those steps)."""
        for key, values in self.history.items():
            self.history[key] = deque(((s, v) for s, v in values if s <= step), maxlen=HISTORY)


class Rollback:
    """The `rollback` policy: remembers the last good state and restores it when a NaN is found."""

    def __init__(self, max_rollbacks: int = MAX_ROLLBACKS, factor: float = LR_FACTOR) -> None:
        self.max_rollbacks, self.factor = max_rollbacks, factor
        self.good: Checkpoint | None = None
        self.in_a_row = 0
        self.total = 0
        self.last_bad_step = -1

    def remember(self, good: Checkpoint) -> None:
        """Keep host copies of a state known to be good (the start of a session, or a checkpoint just written)."""
        self.good = good
        if good.step > self.last_bad_step:
            self.in_a_row = 0

    def recover(self, trainer: Trainer, error: NonFiniteError, monitor: Monitor) -> None:
        """Restore the last good state with lower learning rates (`trainer.roll_back_to`), or re-raise when rolling
        back keeps failing."""
        if self.good is None:
            raise error
        if self.in_a_row >= self.max_rollbacks:
            raise TrainingError(
                f"{error.event} again after {self.in_a_row} rollbacks "
                f"with lower learning rates; training stopped and {_kept(error.last_checkpoint)}",
                "lower --lr further, or try another loss",
            )
        self.in_a_row += 1
        self.total += 1
        self.last_bad_step = max(self.last_bad_step, error.step)
        (old_g, old_d), (lr_g, lr_d) = trainer.roll_back_to(self.good, self.factor)
        written = self.good.path.name.endswith(".safetensors")  # else the run directory: nothing saved yet
        where = f"checkpoint {self.good.path}" if written else "the start of the run"
        monitor.rewind({"step": self.good.step, "event": "rollback", "bad_step": error.step, "rollback": self.in_a_row,
                        "lr_g": lr_g, "lr_d": lr_d})  # metrics.jsonl and the loggers (rank 0 only)
        monitor.note(
            f"warning: {error.event}; rolled back to step "
            f"{self.good.step} ({where}), halved the learning rates (G {old_g:g} -> {lr_g:g}, "
            f"D {old_d:g} -> {lr_d:g}) and skipped the batches since then "
            f"(rollback {self.in_a_row} of {self.max_rollbacks})"
        )
