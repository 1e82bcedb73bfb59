"""A folder's images decoded once into the image cache (gantoolkit.data.cache), and read from it afterwards.

An entry's key is the folder's file list with each file's size and mtime, and the request (image size, resizing and
crop, channels): a later run, or `gantool evaluate`, on the same files at the same size reads the entry instead of
decoding. An entry of the same folder and request whose files have changed since is rebuilt, with one line saying
so, and then removed. A file modified within RACY_NS of the entry's making could change again without its mtime
moving (timestamps are coarse), so the entry keeps such files' SHA-256 and checks them when it is read (git's "racy
clean" rule). Unreadable images are refused or skipped as `--on-bad-image` says, on a cached run as on the first:
the entry remembers which it skipped, and tries them again.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantoolkit.builtin.datasets import imaging
from gantoolkit.data import cache
from gantoolkit.errors import DataError
from gantoolkit.files.reading import open_regular

Decode = Callable[[Path], torch.Tensor]
BAD_IMAGE_HINT = "fix or remove it, or pass --on-bad-image skip to skip unreadable images"
#: a file whose mtime is this close to (or after) the making of its entry is checked by content as well
RACY_NS = 2 * 10**9


def file_list(root: Path, files: list[Path]) -> list[list[Any]]:
    """[name, size, mtime_ns] of each file (name relative to `root`); -1, -1 for one that cannot be stat'ed."""
    out: list[list[Any]] = []
    for path in files:
        try:
            st = os.stat(path)
            out.append([path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([path.relative_to(root).as_posix(), -1, -1])
    return out


def _digest(path: Path) -> str | None:
    """SHA-256 of a regular file's bytes; None for anything else or an unreadable file."""
    try:
        digest = hashlib.sha256()
        with open_regular(path) as fh:
            while chunk := fh.read(2**20):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def _changes(old: list[list[Any]], new: list[list[Any]]) -> str:
    """'2 changed, 1 added, 0 removed' between two file lists."""
    before, after = {str(f[0]): f[1:] for f in old}, {str(f[0]): f[1:] for f in new}
    changed = sum(1 for name, stat in after.items() if name in before and before[name] != stat)
    added = sum(1 for name in after if name not in before)
    removed = sum(1 for name in before if name not in after)
    return f"{changed} changed, {added} added, {removed} removed"


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def cached_folder(root: Path, shown: str, files: list[Path], labels: list[int] | None, request: dict[str, Any],
                  decode: Decode, on_bad_image: str) -> cache.CachedImages:
    """The cache entry of `files` decoded as `request` says (`decode` reads one file; the request's `channels` is
    1, 3, or None for 3 unless every image is grey), built now when there is none or it no longer holds the files.
    DataError for an unreadable image with `on_bad_image` "error", for a folder none of whose images can be read,
    and when the cache cannot be written."""
    started = time.time_ns()
    listed = file_list(root, files)
    folder = str(root.resolve())
    key = cache.make_key({"files": listed, "request": request})
    try:
        with cache.lock(key):
            entry = cache.open_entry(key)
            problem = entry.problem() if entry is not None else None
            stale = [e for e in cache.entries() if e.key != key and e.meta.get("folder") == folder
                     and e.meta.get("request") == request]
            if entry is not None and problem is None:
                rewritten = [name for name, digest in entry.meta.get("racy", {}).items()
                             if _digest(root / name) != digest]
                readable = [] if rewritten else [name for name, _ in entry.skipped if _decodes(root / name, decode)]
                if not rewritten and not readable:
                    _refuse_skipped(entry, shown, on_bad_image)
                    return entry
                if rewritten:
                    _say(f"note: the image cache of {shown} was made from files that have changed since "
                         f"({len(rewritten)} rewritten, first: {rewritten[0]}); rebuilding it")
                else:
                    _say(f"note: {len(readable)} image(s) of {shown} that could not be read when its cache was made "
                         f"read now (first: {readable[0]}); rebuilding the cache")
            elif problem is not None:
                _say(f"note: the image cache of {shown} is damaged ({problem}); rebuilding it")
            elif stale:
                _say(f"note: the image cache of {shown} was made from files that have changed since "
                     f"({_changes(_files_of(stale[-1]), listed)}); rebuilding it")
            cache.remove_leftovers(key)
            entry = _build(key, root, shown, files, labels, listed, request, decode, on_bad_image, started)
            for old in stale:
                cache.remove(old)
            return entry
    except OSError as e:
        raise DataError(f"cannot write the image cache in {cache.cache_dir()}: {e.strerror or e}",
                        f"free space there, or set {cache.ENV} to a folder with room") from None


def _files_of(entry: cache.CachedImages) -> list[list[Any]]:
    try:
        return entry.files()
    except (OSError, ValueError):
        return []


def _decodes(path: Path, decode: Decode) -> bool:
    try:
        decode(path)
        return True
    except imaging.UnreadableImage:
        return False


def _refuse_skipped(entry: cache.CachedImages, shown: str, on_bad_image: str) -> None:
    """With --on-bad-image error, the first image the entry skipped is refused as it was when it was decoded."""
    if entry.skipped and on_bad_image == "error":
        name, reason = entry.skipped[0]
        raise DataError(f"cannot read image {name} in {shown}: {reason}", BAD_IMAGE_HINT)


def _build(key: str, root: Path, shown: str, files: list[Path], labels: list[int] | None, listed: list[list[Any]],
           request: dict[str, Any], decode: Decode, on_bad_image: str, started: int) -> cache.CachedImages:
    """Decode every file into a new entry, one image at a time (memory stays flat however large the folder)."""
    kept: list[int] = []
    skipped: list[list[str]] = []
    racy: dict[str, str | None] = {}
    grey = True
    with cache.Builder(key) as builder:
        for i, (path, (name, _, mtime)) in enumerate(zip(files, listed, strict=True)):
            if mtime >= started - RACY_NS:
                racy[name] = _digest(path)
            try:
                image = decode(path)
            except imaging.UnreadableImage as e:
                if on_bad_image == "error":
                    raise DataError(f"cannot read image {name} in {shown}: {e.reason}", BAD_IMAGE_HINT) from e
                skipped.append([name, e.reason])
                continue
            grey = grey and image.shape[0] == 1
            if request["channels"] is None and image.shape[0] == 1:
                image = image.expand(3, -1, -1)  # until every image is known to be grey
            builder.write(image.numpy())
            kept.append(i)
        if not kept:
            raise DataError(f"none of the {len(files)} image(s) in {shown} could be read (first: {skipped[0][0]})",
                            "check that the files are valid images")
        if request["channels"] is None and grey:
            builder.keep_first_channel()
        targets = np.asarray([labels[i] for i in kept], dtype=np.int64) if labels is not None else None
        meta = {"folder": str(root.resolve()), "request": request, "skipped": skipped, "racy": racy}
        return builder.commit(targets, listed, meta)
