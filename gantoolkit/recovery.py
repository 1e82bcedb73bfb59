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

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gantoolkit import runs
from gantoolkit.checkpoint import TRAINING, Checkpoint, encode_metadata
from gantoolkit.errors import TrainingError

if TYPE_CHECKING:
    from gantoolkit.progress import Monitor
    from gantoolkit.trainer import Trainer

MAX_ROLLBACKS = 3
LR_FACTOR = 0.5
POLICIES = ("stop", "rollback")


class NonFiniteError(TrainingError):
    """A loss (or, at checkpoint time, a weight) became NaN or infinite at `step`."""

    def __init__(self, step: int, what: str, last_checkpoint: Path | None) -> None:
        self.step, self.what, self.last_checkpoint = step, what, last_checkpoint
        super().__init__(
            f"{what} became NaN or infinite at step {step}; training stopped and {_kept(last_checkpoint)}",
            "lower the learning rate (--lr), try another loss, or pass --on-nan rollback",
        )


def _kept(last_checkpoint: Path | None) -> str:
    return f"the last good checkpoint {last_checkpoint} is kept" if last_checkpoint else "no checkpoint was written"


class Rollback:
    """The `rollback` policy: remembers the last good state and restores it when a NaN is found."""

    def __init__(self, max_rollbacks: int = MAX_ROLLBACKS, factor: float = LR_FACTOR) -> None:
        self.max_rollbacks, self.factor = max_rollbacks, factor
        self.good: Checkpoint | None = None
        self.in_a_row = 0
        self.total = 0
        self.last_bad_step = -1

    def remember(self, trainer: Trainer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Keep host copies of a state known to be good (the start of a session, or a checkpoint just written)."""
        self.good = Checkpoint(trainer.last_checkpoint or trainer.run_dir, TRAINING, trainer.step, trainer.cfg,
                               trainer.info, {}, encode_metadata(meta), tensors)
        if trainer.step > self.last_bad_step:
            self.in_a_row = 0

    def recover(self, trainer: Trainer, error: NonFiniteError, monitor: Monitor) -> None:
        """Restore the last good state with lower learning rates, or re-raise when rolling back keeps failing."""
        if self.good is None:
            raise error
        if self.in_a_row >= self.max_rollbacks:
            raise TrainingError(
                f"{error.what} became NaN or infinite at step {error.step} again after {self.in_a_row} rollbacks "
                f"with lower learning rates; training stopped and {_kept(error.last_checkpoint)}",
                "lower --lr further, or try another loss",
            )
        self.in_a_row += 1
        self.total += 1
        self.last_bad_step = max(self.last_bad_step, error.step)
        old = [[(g["lr"], g.get("initial_lr")) for g in opt.param_groups] for opt in (trainer.opt_g, trainer.opt_d)]
        trainer.load_weights(self.good)  # models, EMA, optimizer states (with the rates they had then)
        for opt, rates in zip((trainer.opt_g, trainer.opt_d), old, strict=True):
            for group, (lr, base) in zip(opt.param_groups, rates, strict=True):
                group["lr"] = lr * self.factor
                if base is not None:  # the rate --lr-decay scales (see Trainer.set_learning_rates)
                    group["initial_lr"] = base * self.factor
        trainer.restart_from(self.good.step)
        lr_g, lr_d = (opt.param_groups[0]["lr"] for opt in (trainer.opt_g, trainer.opt_d))
        where = f"checkpoint {trainer.last_checkpoint}" if trainer.last_checkpoint else "the start of the run"
        record = {"step": self.good.step, "event": "rollback", "bad_step": error.step, "rollback": self.in_a_row,
                  "lr_g": lr_g, "lr_d": lr_d}
        if _writes_the_run_directory(trainer):
            runs.truncate_metrics(trainer.run_dir, self.good.step)
            with open(trainer.run_dir / runs.METRICS, "a") as fh:
                fh.write(json.dumps(record) + "\n")
        monitor.last_step = self.good.step  # the speed of the next log line is measured from here
        monitor.advance(self.good.step)
        monitor.note(
            f"warning: {error.what} became NaN or infinite at step {error.step}; rolled back to step "
            f"{self.good.step} ({where}), halved the learning rates (G {old[0][0][0]:g} -> {lr_g:g}, "
            f"D {old[1][0][0]:g} -> {lr_d:g}) and skipped the batches since then "
            f"(rollback {self.in_a_row} of {self.max_rollbacks})"
        )


def _writes_the_run_directory(trainer: Trainer) -> bool:
    """In a run of several processes only the first writes files (the others roll back in step with it)."""
    processes = getattr(trainer, "procs", None)
    return processes is None or bool(processes.is_main)
