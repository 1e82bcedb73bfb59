"""Where a command may write: the one check every output goes through, and the marks that say gantool wrote a file.

An existing file is replaced only when gantool wrote it and it is of the same kind (a PNG by a PNG, directions by
directions, ...), or when the user passes `--force`. Whatever `--force` says, these are never replaced: the
command's own input (the same file, also through a symbolic or hard link), a symbolic link (nothing is ever written
through one), a folder, a device or FIFO, and anything in a run's `checkpoints/` folder (a file there could be taken
for the run's newest checkpoint). A folder of PNGs is written only into a new or empty folder, or one that holds
nothing but the PNGs an earlier `gantool sample` put there (those are replaced); a model folder likewise, or one an
earlier `gantool export --format folder` wrote (its config.json says so, and it holds nothing else).

What gantool wrote is recognised from a file's first bytes, never by decoding or unpickling it: a PNG's `Software`
text chunk, a GIF's comment, an `.npz` archive's comment (a TorchScript archive's says `torchscript`), an ONNX
model's producer name, an evaluation report's `meta.format`, a run report page's
`<meta name="generator">`, and the `format`
(and `kind`) in a safetensors header's metadata. No torch here: outputs are checked before anything heavy runs.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gantoolkit import __version__
from gantoolkit.errors import OutputError
from gantoolkit.files.runs import CHECKPOINTS, METRICS, SAMPLES

#: the mark in every PNG (text chunk `Software`), GIF (comment) and `.npz` (archive comment) gantool writes
SOFTWARE = f"gantoolkit {__version__}"
_MARK = b"gantoolkit"
#: `meta.format` of an evaluation report
REPORT_FORMAT = "gantoolkit-report"

PNG, GIF, NPZ, REPORT, HTML = "png", "gif", "npz", "report", "html"
#: what marks a run report page (`gantool report`): this, in the page's first bytes
HTML_MARK = b'<meta name="generator" content="gantoolkit'
_HTML_HEAD = 512
TRAINING, GENERATOR = "gantoolkit/training", "gantoolkit/generator"  # checkpoints: format "gantoolkit" + kind
CLASSIFIER, DIRECTIONS = "gantoolkit-classifier", "gantoolkit-directions"  # their safetensors `format`
ONNX, TORCHSCRIPT = "onnx", "torchscript"  # `gantool export --format onnx|torchscript`
PNG_FOLDER = "png-folder"
#: `gantool export --format folder`: the files it writes, and the `format` in its config.json
MODEL_FOLDER = "model-folder"
MODEL_FOLDER_FILES = ("model.safetensors", "config.json", "README.md", "samples.png")
MODEL_FOLDER_FORMAT = "gantoolkit-model-folder"

_WHAT = {
    PNG: "a PNG gantool wrote", GIF: "a GIF gantool wrote", NPZ: "an .npz gantool wrote",
    REPORT: "an evaluation report gantool wrote", HTML: "a run report gantool wrote",
    TRAINING: "a gantoolkit training checkpoint",
    GENERATOR: "a gantoolkit generator-only checkpoint", CLASSIFIER: "a gantoolkit classifier",
    DIRECTIONS: "a gantoolkit directions file",
    ONNX: "an ONNX model gantool exported", TORCHSCRIPT: "a TorchScript generator gantool exported",
}
_SUFFIX_KINDS = {".png": PNG, ".gif": GIF, ".npz": NPZ, ".json": REPORT, ".html": HTML}
_STEP_FILE = re.compile(r"^step-\d+\.safetensors$")
#: the names `gantool sample --out FOLDER/` gives its PNGs (index, then the class name made safe)
SAMPLE_NAME = re.compile(r"^\d{6,}(-[\w-]{0,40})?\.png$")
_HEADER_LIMIT = 16 * 1024 * 1024  # a safetensors header or a report larger than this is not one gantool wrote
_FORCE_HINT = "choose another file, or add --force to replace it"
#: the help of every command's --force
FORCE_HELP = ("Replace an existing output file that gantool did not write or wrote as another kind. Never replaces "
              "the command's input, a symbolic link, a folder, or anything in a run's checkpoints/ folder.")


def kind_for_suffix(path: Path) -> str | None:
    """The kind gantool writes for `path`'s suffix (.png, .gif, .npz, .json), None for another suffix."""
    return _SUFFIX_KINDS.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class Output:
    """A file (or, for `PNG_FOLDER`, a folder) a command will write: checked before any work, and again just
    before the write, so nothing is created or changed when it is refused."""

    path: Path
    kind: str
    force: bool = False
    inputs: tuple[Path, ...] = ()
    flag: str = "--out"

    @classmethod
    def of(cls, path: Path, kind: str, force: bool = False, inputs: Iterable[Path | str | None] = (),
           flag: str = "--out") -> Output:
        """An Output whose inputs may include None (an option not given)."""
        return cls(Path(path), kind, force, tuple(Path(p) for p in inputs if p is not None), flag)

    def check(self) -> Output:
        """Refuse, in one line, a write this output must not make; returns itself."""
        path, name = self.path, f"{self.flag} {str(self.path)!r}"
        folder = self.kind in (PNG_FOLDER, MODEL_FOLDER)
        if not folder and not path.parent.is_dir():
            raise OutputError(f"the folder of {name} does not exist", "create it first")
        for source in self.inputs:
            if _same_file(path, source):
                raise OutputError(f"{name} is the command's input {str(source)!r}",
                                  "choose another file; not even --force replaces an input")
            if folder and _inside(source, path):
                raise OutputError(f"{name} holds the command's input {str(source)!r}", "choose another folder")
        if _in_run_checkpoints(path, folder):
            raise OutputError(f"{name} is inside a run's {CHECKPOINTS} folder",
                              "only gantool train writes there, where a file could become the run's newest "
                              "checkpoint; choose another folder")
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return self
        except OSError as e:
            raise OutputError(f"cannot look at {name}: {e.strerror or e}") from None
        if stat.S_ISLNK(mode):
            raise OutputError(f"{name} is a symbolic link",
                              "gantool never replaces a link or writes through one, even with --force; give the "
                              "path of a new file")
        if folder:
            self._replaced_files(mode)
            return self
        if stat.S_ISDIR(mode):
            raise OutputError(f"{name} is a folder", "give a file name")
        if not stat.S_ISREG(mode):
            raise OutputError(f"{name} is not a regular file (a device, FIFO or socket)", "give a file name")
        found, what = identify(path)
        if found != self.kind and not self.force:
            raise OutputError(f"{name} already exists and is {what}; it is not replaced", _FORCE_HINT)
        return self

    def write(self, payload: bytes) -> None:
        """Check again, then write `payload` atomically."""
        self.check()
        atomic_write(self.path, payload)

    def write_folder(self, files: dict[str, bytes]) -> None:
        """Write `files` (name -> contents) into the folder, then remove the PNGs of an earlier `gantool sample`
        that were not written again (the folder then holds exactly this output)."""
        self.check()
        old = self._replaced_files(os.lstat(self.path).st_mode) if os.path.lexists(self.path) else []
        self.path.mkdir(parents=True, exist_ok=True)
        for file_name, payload in files.items():
            atomic_write(self.path / file_name, payload)
        for stale in old:
            if stale.name not in files:
                stale.unlink(missing_ok=True)

    def _replaced_files(self, mode: int) -> list[Path]:
        """The files gantool wrote in the existing folder (sample PNGs, or a model folder's); anything else there
        is refused."""
        name = f"{self.flag} {str(self.path)!r}"
        if self.kind == MODEL_FOLDER:
            return self._replaced_model_files(mode, name)
        if not stat.S_ISDIR(mode):
            what = "a file" if stat.S_ISREG(mode) else "a symbolic link" if stat.S_ISLNK(mode) else (
                "a device, FIFO or socket")
            raise OutputError(f"{name} already exists and is {what}, not a folder",
                              "give a new or empty folder, or a FILE.png or FILE.npz")
        found = []
        for entry in sorted(os.scandir(self.path), key=lambda e: e.name):
            path = Path(entry.path)
            if not SAMPLE_NAME.match(entry.name) or identify(path)[0] != PNG:
                raise OutputError(f"{name} already exists and is not an empty folder: it holds "
                                  f"{_short(entry.name)!r}, which gantool sample did not write",
                                  "give a new or empty folder (--force never writes into one that holds other files)")
            found.append(path)
        return found

    def _replaced_model_files(self, mode: int, name: str) -> list[Path]:
        if not stat.S_ISDIR(mode):
            raise OutputError(f"{name} already exists and is not a folder", "give a new or empty folder")
        entries = sorted(os.scandir(self.path), key=lambda e: e.name)
        if not entries:
            return []
        config = self.path / "config.json"
        others = [e.name for e in entries if e.name not in MODEL_FOLDER_FILES or not e.is_file(follow_symlinks=False)]
        hint = "give a new or empty folder (--force never writes into one that holds other files)"
        if others:
            raise OutputError(f"{name} already exists and is not an empty folder: it holds {_short(others[0])!r}, "
                              "which gantool export did not write", hint)
        if not _model_folder_config(config):
            raise OutputError(f"{name} already exists and is not a model folder gantool exported (no config.json "
                              "of one)", hint)
        return [Path(e.path) for e in entries]


def _model_folder_config(path: Path) -> bool:
    """Whether `path` is the config.json of a model folder gantool exported (a regular file, read as JSON)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode) or os.lstat(path).st_size > _HEADER_LIMIT:
            return False
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == MODEL_FOLDER_FORMAT


def identify(path: Path) -> tuple[str | None, str]:
    """What an existing path is: (the kind gantool wrote it as, or None; a few words for messages). Reads a few
    header bytes of a regular file and nothing else: never follows a link, never blocks on a FIFO."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None, "missing"
    if stat.S_ISLNK(mode):
        return None, "a symbolic link"
    if stat.S_ISDIR(mode):
        return None, "a folder"
    if not stat.S_ISREG(mode):
        return None, "not a regular file"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None, "a file gantool cannot read"
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        try:
            return _sniff(fh, info.st_size)
        except (OSError, ValueError, struct.error, IndexError, RecursionError):
            return None, "a file gantool did not write"


def _sniff(fh: BinaryIO, size: int) -> tuple[str | None, str]:
    head = fh.read(16)
    fh.seek(0)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return (PNG, _WHAT[PNG]) if _png_marked(fh) else (None, "a PNG gantool did not write")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return (GIF, _WHAT[GIF]) if _gif_marked(fh) else (None, "a GIF gantool did not write")
    if head.lower().startswith(b"<!doctype html"):
        return (HTML, _WHAT[HTML]) if HTML_MARK in fh.read(_HTML_HEAD) else (None, "an HTML file gantool did not write")
    if head.startswith(b"PK"):
        comment = _zip_comment(fh, size)
        if comment.startswith(_MARK):
            return (TORCHSCRIPT, _WHAT[TORCHSCRIPT]) if comment.endswith(b" torchscript") else (NPZ, _WHAT[NPZ])
        return None, "a zip file (an .npz or a PyTorch file) gantool did not write"
    if len(head) >= 9 and head[8:9] == b"{":
        found = _safetensors_kind(fh, size)
        if found is not None:
            return found
    producer = _onnx_producer(head + fh.read(240)[16:])
    fh.seek(0)
    if producer is not None:
        return (ONNX, _WHAT[ONNX]) if producer.startswith(_MARK) else (None, "an ONNX model gantool did not write")
    if head.lstrip()[:1] == b"{" and size <= _HEADER_LIMIT:
        try:
            data = json.loads(fh.read())
        except (ValueError, UnicodeDecodeError):
            data = None
        meta = data.get("meta") if isinstance(data, dict) else None
        if isinstance(meta, dict) and meta.get("format") == REPORT_FORMAT:
            return REPORT, _WHAT[REPORT]
        return None, "a JSON file gantool did not write"
    return None, "a file gantool did not write"


def _png_marked(fh: BinaryIO) -> bool:
    """Whether a `Software: gantoolkit ...` text chunk comes before the image data."""
    fh.seek(8)
    for _ in range(64):
        header = fh.read(8)
        if len(header) < 8:
            return False
        length, chunk = struct.unpack(">I4s", header)
        if chunk in (b"IDAT", b"IEND"):
            return False
        if chunk == b"tEXt" and length <= 4096:
            keyword, _, text = fh.read(length).partition(b"\0")
            if keyword == b"Software" and text.startswith(_MARK):
                return True
            fh.seek(4, io.SEEK_CUR)
        else:
            fh.seek(length + 4, io.SEEK_CUR)
    return False


def _gif_marked(fh: BinaryIO) -> bool:
    """Whether a `gantoolkit ...` comment comes before the first frame."""
    screen = fh.read(13)
    if len(screen) < 13:
        return False
    if screen[10] & 0x80:  # a global colour table follows
        fh.seek(3 * 2 ** ((screen[10] & 7) + 1), io.SEEK_CUR)
    for _ in range(64):
        if fh.read(1) != b"!":  # a frame, the trailer or something else: no extension block any more
            return False
        label, data = fh.read(1), b""
        for _ in range(1024):
            size = fh.read(1)
            if not size or size == b"\0":
                break
            data += fh.read(size[0])
        if label == b"\xfe" and data.startswith(_MARK):
            return True
    return False


def _zip_comment(fh: BinaryIO, size: int) -> bytes:
    """The archive comment of a zip file (from its end-of-central-directory record), or b""."""
    tail = min(size, 22 + 65535)
    fh.seek(size - tail)
    data = fh.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(data):
        return b""
    (length,) = struct.unpack("<H", data[at + 20 : at + 22])
    return data[at + 22 : at + 22 + length]


def _safetensors_kind(fh: BinaryIO, size: int) -> tuple[str | None, str] | None:
    """(kind, words) of a safetensors file from its header's metadata; None when it is not one."""
    (length,) = struct.unpack("<Q", fh.read(8))
    if length > min(_HEADER_LIMIT, size - 8):
        return None
    try:
        header = json.loads(fh.read(length))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    meta = header.get("__metadata__")
    if not isinstance(meta, dict):
        return None, "a safetensors file gantool did not write"
    fmt = meta.get("format")
    if fmt == "gantoolkit":
        kind = f"gantoolkit/{meta.get('kind', 'training')}"
        return (kind, _WHAT[kind]) if kind in _WHAT else (kind, "a gantoolkit checkpoint of an unknown kind")
    if fmt in (CLASSIFIER, DIRECTIONS):
        return fmt, _WHAT[fmt]
    return None, "a safetensors file gantool did not write"


def _onnx_producer(head: bytes) -> bytes | None:
    """The producer name of an ONNX model from its first bytes (field 1, ir_version, then field 2), or None."""
    if head[:1] != b"\x08":
        return None
    at = 1
    while at < 11 and at < len(head) and head[at] & 0x80:  # the ir_version varint
        at += 1
    if at + 2 >= len(head) or head[at + 1 : at + 2] != b"\x12" or head[at + 2] >= 0x80:
        return None
    length = head[at + 2]
    name = head[at + 3 : at + 3 + length]
    return name if len(name) == length and name.isascii() else None


def mark_npz(payload: bytes) -> bytes:
    """An `.npz` archive's bytes with gantool's mark as the archive comment (np.load does not see it)."""
    return mark_zip(payload)


def mark_zip(payload: bytes, tag: str = "") -> bytes:
    """A zip archive's bytes with gantool's mark (and `tag`, e.g. torchscript) as the archive comment."""
    buffer = io.BytesIO(payload)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.comment = (SOFTWARE + (f" {tag}" if tag else "")).encode()
    return buffer.getvalue()


def atomic_write(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename over `path`.

    A crash at any moment leaves either the old file or the new one, never half of one; a link at `path` is
    replaced, never written through (and neither is one at the temporary name).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, RuntimeError):
        return False


def _in_run_checkpoints(path: Path, is_folder: bool) -> bool:
    """Whether `path` is in (or, for a folder output, is) a run's checkpoints folder: a folder named `checkpoints`
    beside a run's samples or metrics, or holding `step-N.safetensors` files, and any `step-N.safetensors` name in
    a folder named `checkpoints`."""
    try:
        folder = Path(path).resolve() if is_folder else Path(path).parent.resolve()
    except (OSError, RuntimeError):
        return False
    if folder.name != CHECKPOINTS:
        return False
    if _STEP_FILE.match(Path(path).name) or (folder.parent / METRICS).exists() or (folder.parent / SAMPLES).is_dir():
        return True
    try:
        return any(_STEP_FILE.match(p.name) for p in folder.iterdir())
    except OSError:
        return False


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
