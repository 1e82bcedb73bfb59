"""Fetching Quick, Draw! categories from the public numpy_bitmap release, each into its file atomically."""

from __future__ import annotations

import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from gantoolkit.errors import DataError

#: where the release keeps one CATEGORY.npy per category (read at each download, so a test can point it elsewhere)
BASE_URL = "https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap/"
#: the release's list of the 345 category names
CATEGORIES_URL = "https://github.com/googlecreativelab/quickdraw-dataset/blob/master/categories.txt"
TIMEOUT = 60
CHUNK = 1 << 20


def category_url(category: str) -> str:
    """The release's URL of a category's file; its name is kept as it is, spaces quoted (`hot%20dog.npy`)."""
    return f"{BASE_URL}{urllib.parse.quote(category)}.npy"


def fetch_missing(folder: Path, categories: Iterable[str], check: Callable[[Path, str], object]) -> list[str]:
    """Download each category whose CATEGORY.npy is not in `folder` (made if missing); returns those fetched.

    A file already there is not fetched again. `check(path, shown)` raises DataError when a downloaded file is not
    a category's bitmaps; it runs before the file takes its name, so a bad download never replaces or becomes one.
    """
    missing = [c for c in categories if not (folder / f"{c}.npy").exists()]
    if missing:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create {folder} for the Quick, Draw! files: {e.strerror or e}",
                            "check the path given to --data quickdraw:PATH") from e
    for category in missing:
        fetch(category, folder / f"{category}.npy", check)
    return missing


def fetch(category: str, target: Path, check: Callable[[Path, str], object]) -> None:
    """Download one category to a temporary file beside `target`, check it, then rename it to `target`."""
    url = category_url(category)
    print(f"downloading Quick, Draw! category {category!r} from {url} into {target.parent}", file=sys.stderr)
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as e:
        raise DataError(f"cannot write into {target.parent}: {e.strerror or e}",
                        "check the folder's permissions") from e
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            _download(url, category, out, target.parent)
            out.flush()
            os.fsync(out.fileno())
        check(tmp, f"the download of {category!r} from {url}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _download(url: str, category: str, out: BinaryIO, folder: Path) -> None:
    """Copy the body of `url` into the open file `out`; DataError, in one line, for anything that goes wrong."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            length = response.headers.get("Content-Length", "")
            copied = 0
            while chunk := response.read(CHUNK):
                out.write(chunk)
                copied += len(chunk)
    except urllib.error.HTTPError as e:
        if e.code in (403, 404):  # the release's bucket answers a name it does not hold with one of these
            raise DataError(f"Quick, Draw! has no category {category!r} ({url} answered HTTP {e.code})",
                            f"check its spelling and case against {CATEGORIES_URL}") from None
        raise DataError(f"could not download Quick, Draw! category {category!r} from {url}: HTTP {e.code} {e.reason}",
                        f"try again later, or put {category}.npy into {folder} yourself") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise DataError(f"could not download Quick, Draw! category {category!r} from {url}: {reason}",
                        f"check the network, or put {category}.npy into {folder} yourself") from None
    if length.isdigit() and copied != int(length):  # http.client ends a body cut short without an error
        raise DataError(f"could not download Quick, Draw! category {category!r} from {url}: the connection closed "
                        f"after {copied:,} of {int(length):,} bytes", "try again (nothing was kept)")
