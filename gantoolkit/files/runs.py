"""Run directories: where a run keeps its checkpoints, sample grids and metrics log.

    RUN/checkpoints/step-00001500.safetensors    (the newest few; atomic writes)
    RUN/samples/step-00001500.png                (grids from fixed latents)
    RUN/metrics.jsonl                            (one JSON object per logged step)
    RUN/.lock                                    (held by the process that trains the run)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gantoolkit.errors import CheckpointError, RunDirectoryError

CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
METRICS = "metrics.jsonl"
LOCK = ".lock"
_STEP_FILE = re.compile(r"^step-(\d+)\.safetensors$")


def checkpoint_path(run: Path, step: int) -> Path:
    return run / CHECKPOINTS / f"step-{step:08d}.safetensors"


def sample_path(run: Path, step: int) -> Path:
    return run / SAMPLES / f"step-{step:08d}.png"


def final_sample_path(run: Path) -> Path:
    """The grid written when a run reaches its last step."""
    return Path(run) / SAMPLES / "final.png"


def list_checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint in a run, oldest first (temporary files are ignored)."""
    folder = Path(run) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _STEP_FILE.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def is_run(path: Path) -> bool:
    return (Path(path) / CHECKPOINTS).is_dir()


#: the generator of a model folder (`gantool export --format folder`)
MODEL_FILE = "model.safetensors"


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, the newest checkpoint of a run directory, or a model folder's model."""
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found and (path / MODEL_FILE).is_file() and (path / "config.json").is_file():
            return path / MODEL_FILE  # a model folder (`gantool export --format folder`)
        if not found:
            raise CheckpointError(
                f"{str(path)!r} holds no checkpoint",
                "give a .safetensors file, or a run directory made by `gantool train`",
            )
        return found[-1][1]
    if not path.exists():
        raise CheckpointError(f"{str(path)!r} does not exist", "give a .safetensors file or a run directory")
    return path


def remove_temporaries(run: Path) -> None:
    """Delete the temporary files that a killed writer left beside the checkpoints (they are never complete)."""
    folder = Path(run) / CHECKPOINTS
    for path in folder.glob(".step-*.safetensors.*.tmp") if folder.is_dir() else []:
        path.unlink(missing_ok=True)


def prune_checkpoints(run: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (the newest is always kept: `keep` below 1 counts as 1)."""
    for _, path in list_checkpoints(run)[:-max(keep, 1)]:
        path.unlink(missing_ok=True)


def create_run_dir(out: Path | None, default_name: str, root: Path = Path("runs")) -> Path:
    """A fresh run directory. An explicit `out` that already has content is refused, untouched."""
    return make_run_dir(choose_run_dir(out, default_name, root))


def choose_run_dir(out: Path | None, default_name: str, root: Path = Path("runs")) -> Path:
    """Where a new run will live (nothing is created): `out`, which must be new or empty, or a fresh name."""
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise RunDirectoryError(f"{str(out)!r} is a file, not a run directory", "choose another --out")
        if out.exists() and any(out.iterdir()):
            hint = f"continue it with --resume {out}" if is_run(out) else "choose another --out"
            raise RunDirectoryError(f"{str(out)!r} already exists and is not empty", hint)
        target = out
    else:
        target = root / default_name
        n = 2
        while target.exists():
            target = root / f"{default_name}-{n}"
            n += 1
    return target


def make_run_dir(target: Path) -> Path:
    """Create a run directory's folders."""
    try:
        (target / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        (target / SAMPLES).mkdir(exist_ok=True)
    except OSError as e:
        raise RunDirectoryError(f"cannot create run directory {str(target)!r}: {e.strerror}") from None
    return target


class MetricsLog:
    """RUN/metrics.jsonl, its one writer: one JSON object per line, appended as training logs, and cut back to a step
    when a resume or a rollback redoes the steps after it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop the lines newer than `step` (and damaged ones), atomically."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if int(json.loads(line).get("step", 0)) <= step:
                    kept.append(line)
            except (ValueError, AttributeError):
                continue
        from gantoolkit.files.checkpoint import atomic_write

        atomic_write(self.path, "".join(line + "\n" for line in kept).encode())


@contextlib.contextmanager
def training_lock(run: Path) -> Iterator[None]:
    """Hold the run's advisory lock while training it, so that a second process cannot train the same run.

    The kernel releases the lock when the process ends, however it ends (kill -9 included); the file stays. Without
    fcntl (Windows) there is no check.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(run) / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise RunDirectoryError(f"cannot open the run's lock file {str(path)!r}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunDirectoryError(
                f"{str(run)!r} is being trained by another process",
                "wait for it to end, or stop it (Ctrl-C saves a checkpoint) and resume then",
            ) from None
        yield
    finally:
        os.close(fd)
