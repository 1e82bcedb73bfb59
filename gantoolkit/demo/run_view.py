"""The demo's "Run" section: the curves of the run a checkpoint belongs to (`gantool plot`'s picture) and its
configuration. A checkpoint outside a run directory (an exported generator) has neither; the section says so."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from gantoolkit.files import runs


def run_of(checkpoint: Path) -> Path | None:
    """The run directory holding `checkpoint` (RUN/checkpoints/step-N.safetensors), when it has metrics."""
    folder = Path(checkpoint).resolve().parent
    run = folder.parent
    return run if folder.name == runs.CHECKPOINTS and (run / runs.METRICS).is_file() else None


def run_view(checkpoint: Path, config: dict[str, Any]) -> tuple[np.ndarray | None, str]:
    """(the run's curves as an RGB array or None, Markdown: where the run is, its configuration, why no curves)."""
    from PIL import Image

    from gantoolkit.curves import plot_png, read_log
    from gantoolkit.errors import GanToolkitError

    settings = "```json\n" + json.dumps(config, indent=1, sort_keys=True) + "\n```"
    run = run_of(checkpoint)
    if run is None:
        return None, f"No curves: this checkpoint is not in a run directory with a {runs.METRICS}.\n\n{settings}"
    try:
        log = read_log(run)
    except GanToolkitError as e:
        return None, f"No curves: {e.message}\n\n{settings}"
    with Image.open(io.BytesIO(plot_png([log], width=9.0))) as picture:
        curves = np.asarray(picture.convert("RGB"))
    skipped = f"\n\n{len(log.warnings)} damaged lines of {runs.METRICS} skipped." if log.warnings else ""
    name = run.name.replace("`", "")
    return curves, (f"Run `{name}`: {len(log.records)} logged steps, the last at step {log.records[-1]['step']:,}"
                    f" (`gantool plot`, `gantool report` draw the same).{skipped}\n\n{settings}")
