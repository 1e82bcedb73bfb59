"""`--logger tensorboard`: event files under RUN/tb/, through `torch.utils.tensorboard`.

Scalars are grouped by what they are (`loss/loss_d`, `lr/lr_g`, `speed/it_per_s`, `metrics/NAME`), sample grids are
images (`samples`), the configuration is text and hparams, rollbacks are text and a `events/rollback` scalar. A
resumed run writes to the same folder with `purge_step` at the step it continues from, so TensorBoard drops what an
interrupted session had logged after its last checkpoint and the curves go on without duplicated steps.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from gantoolkit.errors import ConfigError
from gantoolkit.loggers import Logger

#: where the event files go, inside the run directory
FOLDER = "tb"
EXTRA_HINT = "pip install 'gantoolkit[tensorboard]' (or pip install tensorboard)"


def _group(key: str) -> str:
    if key.startswith("loss") or key == "penalty" or key == "amp_skipped":
        return f"loss/{key}"
    if key.startswith("lr"):
        return f"lr/{key}"
    if key in ("it_per_s", "elapsed_s"):
        return f"speed/{key}"
    return f"metrics/{key}"


class TensorBoardLogger(Logger):
    """Writes TensorBoard event files to RUN/tb/."""

    def __init__(self, flush_secs: int = 30) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("--logger tensorboard needs the tensorboard package, which is not installed",
                              EXTRA_HINT) from None
        self._writer_class = SummaryWriter
        self.flush_secs = flush_secs
        self.writer: Any = None

    def command(self, run_dir: Path) -> str | None:
        import shlex

        return f"tensorboard --logdir {shlex.quote(str(Path(run_dir) / FOLDER))}"

    def start(self, run_dir: Path, config: dict[str, Any], step: int) -> None:
        folder = Path(run_dir) / FOLDER
        folder.mkdir(exist_ok=True)
        # purge_step: TensorBoard's reader drops events from earlier sessions at and after this step
        self.writer = self._writer_class(str(folder), flush_secs=self.flush_secs, purge_step=step + 1 if step else None)
        if step:
            return  # the configuration was written when the run started
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, sort_keys=True) + "\n```", 0)
        self._hparams(config)

    def _hparams(self, config: dict[str, Any]) -> None:
        """The configuration's plain settings as hparams, in this run's own event file (not a sub-run)."""
        from torch.utils.tensorboard.summary import hparams

        flat: dict[str, Any] = {}
        for key, value in config.items():
            if isinstance(value, dict) and "name" in value:
                flat[key] = str(value["name"])
            elif isinstance(value, (bool, int, float, str)):
                flat[key] = value
            elif isinstance(value, list):
                flat[key] = ",".join(str(v.get("name", v) if isinstance(v, dict) else v) for v in value)
        experiment, start, end = hparams(flat, {"loss/loss_d": 0.0, "loss/loss_g": 0.0})
        file_writer = self.writer._get_file_writer()
        for summary in (experiment, start, end):
            file_writer.add_summary(summary)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            if key != "elapsed_s":
                self.writer.add_scalar(_group(key), value, step)

    def image(self, step: int, name: str, png: bytes) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(io.BytesIO(png)) as picture:
            pixels = np.asarray(picture.convert("RGB"))
        self.writer.add_image("samples", pixels, step, dataformats="HWC")

    def event(self, step: int, record: dict[str, Any]) -> None:
        if record.get("event") == "rollback":  # the steps after `step` are discarded: so are their events
            self._purge_after(step)
            self.writer.add_scalar("events/rollback", float(record.get("bad_step", step)), step)
        self.writer.add_text("events", json.dumps(record, sort_keys=True), step)

    def _purge_after(self, step: int) -> None:
        """What `purge_step` writes when a writer opens: the reader drops earlier events at `step + 1` and later."""
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog

        self.writer._get_file_writer().add_event(Event(step=step + 1, session_log=SessionLog(status=SessionLog.START)))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
