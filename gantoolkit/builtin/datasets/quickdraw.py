"""`quickdraw:PATH`: Google's Quick, Draw! numpy bitmaps (one N×784 uint8 `.npy` per category), memory-mapped.

A file's header is checked before numpy opens it, and it is opened with `allow_pickle=False, mmap_mode="r"`: nothing
is ever unpickled, and of a category file (100 MB or more) only the rows taken are read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from gantoolkit.builtin.datasets.imaging import image_hw, resize_uint8
from gantoolkit.data import IMAGE, DataInfo, DataRequest, Dataset, DataSource
from gantoolkit.errors import DataError
from gantoolkit.files.reading import PICKLE_SNIFF, open_regular, pickle_protocol

NATIVE_SIZE = 28
PIXELS = NATIVE_SIZE * NATIVE_SIZE
#: dcgan (and r3gan) build for sides that are powers of two >= 8, which 28 is not: 32 (as mnist), so the default
#: architecture takes the doodles as they come; --image-size 28 keeps them as drawn (for mlp)
DEFAULT_IMAGE_SIZE = 32
SUFFIX = ".npy"
#: the release's category names: letters, digits, spaces and hyphens ("The Eiffel Tower", "teddy-bear"); anything
#: else (a "/" or a leading ".") could name a file outside the folder, so it is refused
CATEGORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]*")
FORMAT = "N×784 uint8, one 28×28 drawing per row"
SAVE_HINT = "use the numpy_bitmap release's files, or np.save an N×784 uint8 array"


def check_category(name: str) -> str:
    """`name` without surrounding spaces; DataError when it cannot be a category of the release."""
    name = name.strip()
    if not CATEGORY.fullmatch(name):
        raise DataError(f"quickdraw category {name!r} is not a category name (letters, digits, spaces, hyphens)",
                        "name categories as the release does, e.g. categories=cat,hot air balloon,teddy-bear")
    return name


def bitmap_rows(path: Path, shown: str) -> int:
    """The number of drawings in the bitmap file `path` (named `shown` in messages), from its header alone.

    DataError when it is not a `.npy` of N×784 uint8 rows with N >= 1 and all its bytes: a pickle, an array of
    Python objects (readable only by unpickling), another dtype or shape, no rows, or a truncated file.
    """
    try:
        with open_regular(path) as fh:
            protocol = pickle_protocol(fh.read(PICKLE_SNIFF))
            if protocol is not None:
                raise DataError(f"{shown} is a pickle (protocol {protocol}), not a .npy array; gantoolkit never "
                                "unpickles files", SAVE_HINT)
            fh.seek(0)
            try:
                version = np.lib.format.read_magic(fh)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(fh)
            except (ValueError, EOFError) as e:
                raise DataError(f"{shown} is not a readable .npy file ({str(e).splitlines()[0] if str(e) else e!r})",
                                SAVE_HINT) from None
            offset, total = fh.tell(), os.fstat(fh.fileno()).st_size
    except OSError as e:
        raise DataError(f"cannot read {shown}: {e.strerror or e}", "check the path and the file's permissions") from e
    if dtype.hasobject:
        raise DataError(f"{shown} holds Python objects (dtype {dtype}), which only unpickling could read; gantoolkit "
                        "never unpickles files", SAVE_HINT)
    if dtype != np.uint8 or len(shape) != 2 or shape[1] != PIXELS:
        raise DataError(f"{shown} holds a {dtype} array of shape {tuple(shape)}, not Quick, Draw! bitmaps ({FORMAT})",
                        SAVE_HINT)
    if shape[0] == 0:
        raise DataError(f"{shown} holds no drawings (shape {tuple(shape)})",
                        "remove it, or replace it with the category's file from the Quick, Draw! release")
    if total < offset + shape[0] * PIXELS:
        raise DataError(f"{shown} is truncated ({total:,} bytes, its header promises {shape[0]:,} drawings)",
                        "delete it and fetch it again (--download with categories=... fetches what is missing)")
    return int(shape[0])


def read_bitmaps(path: Path, shown: str, limit: int | None) -> np.ndarray:
    """The first `limit` drawings (all when None) of a checked bitmap file, as uint8 n×1×28×28."""
    rows = bitmap_rows(path, shown)
    n = rows if limit is None else min(limit, rows)
    try:
        mapped = np.load(path, allow_pickle=False, mmap_mode="r")
        taken = np.array(mapped[:n], dtype=np.uint8, copy=True)  # only these rows are read from the disk
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {shown}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                        SAVE_HINT) from e
    return taken.reshape(n, 1, NATIVE_SIZE, NATIVE_SIZE)


class QuickDraw(DataSource):
    """Quick, Draw! doodles: a folder of CATEGORY.npy files is labelled (class names: the file stems, sorted), a
    single `.npy` file unlabelled. Resized from 28×28 to `--image-size` (a side or HxW, default 32; bilinear,
    antialiased).

    `per_class`: the first N drawings of each category (the same rows every time; all of them by default).
    `categories`: read only these files of the folder; with `--download`, those missing from it are fetched from the
    public numpy_bitmap release into it first (e.g. categories=cat,dog).
    """

    def __init__(self, per_class: int | None = None, categories: tuple[str, ...] = ()) -> None:
        if per_class is not None and per_class < 1:
            raise DataError(f"quickdraw per_class must be at least 1, got {per_class}",
                            "use e.g. per_class=5000, or leave it out to take every drawing")
        self.per_class = per_class
        self.categories = tuple(sorted({check_category(c) for c in categories if c.strip()}))

    def load(self, request: DataRequest) -> Dataset:
        shown = request.argument
        if not shown:
            raise DataError("the quickdraw dataset needs a path",
                            "use --data quickdraw:FOLDER (one CATEGORY.npy per category) or quickdraw:FILE.npy")
        path = Path(shown).expanduser()
        size = image_hw(request, DEFAULT_IMAGE_SIZE)
        if self.categories and path.is_file():
            raise DataError(f"categories picks files in a folder, but {shown!r} is a file",
                            "give the folder that holds CATEGORY.npy files, or drop categories")
        if request.download and self.categories:
            from gantoolkit.builtin.datasets.quickdraw_download import fetch_missing

            fetch_missing(path, self.categories, bitmap_rows)
        if not path.exists():
            raise DataError(f"Quick, Draw! path {shown!r} does not exist",
                            "check the path given to --data quickdraw:PATH, or fetch categories into it with "
                            "--download --data-opt categories=cat,dog")
        if path.is_dir():
            names = self._category_names(path, shown)
            files = [(path / f"{name}{SUFFIX}", os.path.join(shown, f"{name}{SUFFIX}")) for name in names]
        else:
            names, files = [], [(path, shown)]
        parts = [read_bitmaps(file, where, self.per_class) for file, where in files]
        labels = None
        if names:
            labels = torch.from_numpy(np.repeat(np.arange(len(parts), dtype=np.int64), [len(p) for p in parts]))
        images = resize_uint8(torch.from_numpy(np.concatenate(parts)), size)
        info = DataInfo(
            source=f"quickdraw:{shown}",
            modality=IMAGE,
            shape=(1, *size),
            num_classes=len(names),
            class_names=tuple(names),
            extra={"native_size": NATIVE_SIZE, "rows": [len(p) for p in parts]},
        )
        return Dataset(info, images, labels)

    def _category_names(self, folder: Path, shown: str) -> list[str]:
        """The categories to read from `folder`: `categories` (each file must be there), or every visible `.npy`."""
        if self.categories:
            missing = [c for c in self.categories if not (folder / f"{c}{SUFFIX}").is_file()]
            if missing:
                raise DataError(f"{shown} has no {', '.join(c + SUFFIX for c in missing)}",
                                "pass --download to fetch them from the Quick, Draw! release, or put them there")
            return list(self.categories)
        try:
            found = sorted(p.stem for p in folder.iterdir()
                           if p.suffix == SUFFIX and not p.name.startswith(".") and not p.is_dir())
            others = 0 if found else sum(1 for _ in folder.iterdir())
        except PermissionError as e:
            raise DataError(f"cannot list {shown}: permission denied", "check the folder's permissions") from e
        if not found:
            what = f"{others} other entr{'y' if others == 1 else 'ies'}" if others else "nothing"
            raise DataError(f"no .npy files in {shown} (found {what})",
                            "put one CATEGORY.npy per category in it (the numpy_bitmap release), or fetch some with "
                            "--download --data-opt categories=cat,dog")
        return found
