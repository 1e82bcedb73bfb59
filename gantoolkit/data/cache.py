"""The image cache: a dataset's images decoded once and stored as raw uint8 rows, memory-mapped by later runs.

An entry is a folder CACHE/KEY/ holding `images.u8` (N×C×H×W uint8 without a header: the shape is in meta.json),
`labels.npy` (int64, read with allow_pickle=False), `files.json` (the source files with their sizes and mtimes) and
`meta.json`, written last. An entry is built in a temporary folder beside it and renamed into place under a lock per
key, so a crash never leaves half an entry and two processes asking for one key decode it once. Nothing here is
ever unpickled: JSON, raw bytes and a plain .npy.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

FORMAT = "gantoolkit image cache"
#: bump when what an entry holds changes, so older entries are rebuilt rather than misread
VERSION = 1
IMAGES, LABELS, FILES, META = "images.u8", "labels.npy", "files.json", "meta.json"
#: where entries live when set (tests point it at a temporary folder)
ENV = "GANTOOL_DATA_CACHE"
#: the prefix of the temporary folders of entries being built or removed
BUILDING, REMOVING = ".building-", ".removing-"
LOCK_SUFFIX = ".lock"
#: rows copied at a time when an entry is rewritten (keep_first_channel)
CHUNK_BYTES = 64 * 2**20


def cache_dir() -> Path:
    """$GANTOOL_DATA_CACHE, else `datasets` in the cache the automatic classifiers use ($GANTOOL_CACHE, else
    ~/.cache/gantoolkit)."""
    own = os.environ.get(ENV)
    if own:
        return Path(own).expanduser()
    root = os.environ.get("GANTOOL_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "gantoolkit") / "datasets"


def make_key(parts: dict[str, Any]) -> str:
    """The key of an entry: a hash of everything its images depend on (JSON-able)."""
    text = json.dumps({"version": VERSION, **parts}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # not reached


class CachedImages:
    """One entry: `count` uint8 images of `shape` (C, H, W) and their labels, read by memory-mapping images.u8."""

    def __init__(self, directory: Path, meta: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.meta = meta
        self.count = int(meta["count"])
        self.shape = tuple(int(s) for s in meta["shape"])
        self._handle: IO[bytes] | None = None

    @property
    def key(self) -> str:
        return self.directory.name

    @property
    def images_path(self) -> Path:
        return self.directory / IMAGES

    @property
    def nbytes(self) -> int:
        """The decoded images' size in memory."""
        return self.count * math.prod(self.shape)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(name, reason) of each image that could not be read when the entry was made (--on-bad-image skip)."""
        return [(str(name), str(reason)) for name, reason in self.meta.get("skipped", [])]

    def problem(self) -> str | None:
        """What is wrong with the entry's files, or None: images.u8 must hold exactly count × C×H×W bytes."""
        try:
            size = self.images_path.stat().st_size
        except OSError as e:
            return f"{IMAGES} cannot be read: {e.strerror}"
        if size != self.nbytes:
            return f"{IMAGES} holds {size:,} bytes, not {self.nbytes:,}"
        if self.meta.get("labelled") and not (self.directory / LABELS).is_file():
            return f"{LABELS} is missing"
        return None

    def labels(self) -> np.ndarray | None:
        """int64 labels of the images (None for an unlabelled folder)."""
        if not self.meta.get("labelled"):
            return None
        labels = np.load(self.directory / LABELS, allow_pickle=False)
        if labels.dtype != np.int64 or labels.shape != (self.count,):
            raise ValueError(f"{LABELS} holds {labels.dtype} {labels.shape}, not int64 ({self.count},)")
        return labels

    def files(self) -> list[list[Any]]:
        """[name, size, mtime_ns] of every source file when the entry was made."""
        return list(json.loads((self.directory / FILES).read_text()))

    def open(self) -> IO[bytes]:
        """images.u8, opened once (forked workers share the handle, so removing the entry while a run reads it
        changes nothing for that run; a spawned worker opens it again)."""
        if self._handle is None:
            self._handle = open(self.images_path, "rb")  # noqa: SIM115 - kept open for the entry's lifetime
        return self._handle

    def read(self, indices: Sequence[int], out: np.ndarray | None = None) -> np.ndarray:
        """The images at `indices`, in that order, copied out of a mapping made for this read only (the pages read
        do not stay in this process's resident memory)."""
        rows = np.memmap(self.open(), dtype=np.uint8, mode="r", shape=(self.count, *self.shape))
        taken = np.take(rows, np.asarray(indices, dtype=np.int64), axis=0, out=out)
        del rows  # unmapped here
        return np.asarray(taken)

    def mapped(self) -> np.ndarray:
        """Every image, memory-mapped copy-on-write (writable for torch, never written back): read when touched."""
        return np.asarray(np.memmap(self.images_path, dtype=np.uint8, mode="c", shape=(self.count, *self.shape)))

    def load(self) -> np.ndarray:
        """Every image, read into memory."""
        out = np.empty((self.count, *self.shape), dtype=np.uint8)
        view = out.reshape(-1).data
        with open(self.images_path, "rb") as fh:
            done = 0
            while done < len(view):
                got = fh.readinto(view[done:])
                if not got:
                    raise OSError(f"{self.images_path} ended after {done:,} of {len(view):,} bytes")
                done += got
        return out

    def __getstate__(self) -> dict[str, Any]:  # a spawned worker reopens the file
        return {**self.__dict__, "_handle": None}


def _read_meta(directory: Path) -> dict[str, Any] | None:
    """An entry's meta.json, or None when it is missing or not this format and version."""
    try:
        raw = json.loads((directory / META).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("version") != VERSION:
        return None
    count, shape = raw.get("count"), raw.get("shape")
    if not isinstance(count, int) or count < 1 or not isinstance(shape, list) or len(shape) != 3 \
            or not all(isinstance(s, int) and s > 0 for s in shape):
        return None
    return raw


def open_entry(key: str) -> CachedImages | None:
    """The entry KEY, or None when there is none (or its meta.json is not one gantool wrote)."""
    directory = cache_dir() / key
    meta = _read_meta(directory)
    return CachedImages(directory, meta) if meta is not None else None


def entries() -> list[CachedImages]:
    """Every entry in the cache, oldest first."""
    root = cache_dir()
    try:
        folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    found = [CachedImages(p, meta) for p in folders if (meta := _read_meta(p)) is not None]
    return sorted(found, key=lambda e: (str(e.meta.get("made", "")), e.key))


def disk_bytes(entry: CachedImages) -> int:
    """What an entry takes on disk."""
    return sum(p.stat().st_size for p in entry.directory.iterdir() if p.is_file())


def remove(entry: CachedImages) -> None:
    """Delete an entry: renamed first, so it is never seen half removed. A run reading it keeps its open file."""
    aside = entry.directory.with_name(f"{REMOVING}{entry.key}-{os.getpid()}")
    os.rename(entry.directory, aside)
    shutil.rmtree(aside, ignore_errors=True)


def remove_leftovers(key: str | None = None) -> int:
    """Delete the temporary folders of builds and removals that never finished: those of `key` (call this while
    holding `lock(key)`), or of every key whose lock is free (a build in progress holds its own), and then the lock
    files of keys that have no entry and no build. Returns how many folders were removed."""
    root = cache_dir()
    prefixes = (f"{BUILDING}{key}-", f"{REMOVING}{key}-") if key else (BUILDING, REMOVING)
    try:
        stale = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(prefixes)]
    except OSError:
        return 0
    removed = 0
    for path in stale:
        owner = path.name.split("-")[1] if key is None else key
        with contextlib.nullcontext(True) if key is not None else lock(owner, wait=False) as free:
            if free:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
    if key is None:
        _remove_unused_locks(root)
    return removed


def _remove_unused_locks(root: Path) -> None:
    """Unlink `.KEY.lock` files whose key has no entry, while holding them (`lock` retries on an unlinked file)."""
    for path in root.glob(f".*{LOCK_SUFFIX}"):
        owner = path.name[1:-len(LOCK_SUFFIX)]
        if (root / owner).is_dir():
            continue
        with lock(owner, wait=False) as free:
            if free and not (root / owner).is_dir():
                path.unlink(missing_ok=True)


@contextlib.contextmanager
def lock(key: str, wait: bool = True) -> Iterator[bool]:
    """Hold the lock of one key: other processes asking for it wait, or with `wait=False` get False at once (True
    when they hold it). The lock file may be unlinked by its holder (`gantool cache clear`), so a lock taken on a
    file that is no longer the one at its path is taken again. Without fcntl (Windows) there is no lock."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield True
        return
    path = root / f".{key}{LOCK_SUFFIX}"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # unlinked while we waited for it: lock the file that is there now
    try:
        yield True
    finally:
        os.close(fd)  # releases the lock


class Builder:
    """Writes one entry into a temporary folder; `commit` renames it into place. Use it as a context manager: an
    error (a bad image, a full disk) removes the temporary folder."""

    def __init__(self, key: str) -> None:
        root = cache_dir()
        root.mkdir(parents=True, exist_ok=True)
        self.key = key
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{BUILDING}{key}-", dir=root))
        self._out: IO[bytes] = open(self.tmp / IMAGES, "wb")  # noqa: SIM115 - closed by commit or discard
        self.shape: tuple[int, ...] | None = None
        self.count = 0

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is not None:
            self.discard()

    def write(self, image: np.ndarray) -> None:
        """Append one uint8 C×H×W image; every image has the first one's shape."""
        if self.shape is None:
            self.shape = tuple(image.shape)
        elif tuple(image.shape) != self.shape:
            raise ValueError(f"an image of shape {tuple(image.shape)} among images of shape {self.shape}")
        self._out.write(np.ascontiguousarray(image, dtype=np.uint8).data)
        self.count += 1

    def keep_first_channel(self) -> None:
        """Rewrite the images keeping channel 0 only (grey images written as 3 equal channels)."""
        assert self.shape is not None
        self._out.close()
        c, h, w = self.shape
        src = np.memmap(self.tmp / IMAGES, dtype=np.uint8, mode="r", shape=(self.count, c, h, w))
        chunk = max(1, CHUNK_BYTES // (c * h * w))
        with open(self.tmp / "grey.u8", "wb") as out:
            for start in range(0, self.count, chunk):
                out.write(np.ascontiguousarray(src[start : start + chunk, :1]).data)
        del src
        os.replace(self.tmp / "grey.u8", self.tmp / IMAGES)
        self._out = open(self.tmp / IMAGES, "ab")  # noqa: SIM115 - closed by commit or discard
        self.shape = (1, h, w)

    def commit(self, labels: np.ndarray | None, files: list[list[Any]], meta: dict[str, Any]) -> CachedImages:
        """Write the labels, the file list and meta.json, flush everything to disk and move the entry into place
        (replacing an entry of the same key, which is then damaged or the same)."""
        assert self.shape is not None and self.count > 0
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        if labels is not None:
            np.save(self.tmp / LABELS, np.asarray(labels, dtype=np.int64), allow_pickle=False)
        (self.tmp / FILES).write_text(json.dumps(files))
        made = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        full = {"format": FORMAT, "version": VERSION, "count": self.count, "shape": list(self.shape),
                "labelled": labels is not None, "made": made, **meta}
        with open(self.tmp / META, "w") as fh:
            fh.write(json.dumps(full, indent=1))
            fh.flush()
            os.fsync(fh.fileno())
        target = cache_dir() / self.key
        old = open_entry(self.key) if target.exists() else None
        if old is not None:
            remove(old)
        elif target.exists():
            shutil.rmtree(target)  # not an entry gantool finished: a damaged one
        os.rename(self.tmp, target)
        return CachedImages(target, full)

    def discard(self) -> None:
        self._out.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
