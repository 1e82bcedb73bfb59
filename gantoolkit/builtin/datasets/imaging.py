"""Shared image helpers for the built-in datasets: read a file with PIL, resize + centre-crop, resize tensors.

Only image decoders are used here: nothing is ever unpickled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from gantoolkit.data import DataRequest
from gantoolkit.errors import DataError
from gantoolkit.files.reading import open_regular

#: file name endings recognised as images (compared in lower case)
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

#: PIL modes that hold a single grey channel (possibly with alpha)
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class UnreadableImage(Exception):
    """An image file that PIL cannot decode; `reason` says why in a few words."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def is_image_file(path: Path) -> bool:
    """A visible entry with a recognised image extension that is not a folder. A symbolic link to a missing file, a
    named pipe or a device counts (and is then refused as unreadable, or skipped with --on-bad-image skip), so nothing
    named like an image is left out silently."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and not path.is_dir()


def image_hw(request: DataRequest, default: int) -> tuple[int, int]:
    """(height, width) asked for (`--image-size 64` or `64x32`), or `default` square; DataError when a side is not
    positive."""
    height, width = request.image_hw() or (default, default)
    if height < 1 or width < 1:
        raise DataError(f"image size must be a positive number of pixels, got {height}x{width}",
                        "use e.g. --image-size 64 or --image-size 64x32")
    return int(height), int(width)


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _wide_gray_to_l(img: Image.Image) -> Image.Image:
    """16/32-bit integer grey -> 8-bit "L" (PIL's own convert would clip everything above 255)."""
    arr = np.asarray(img, dtype=np.float64)
    if arr.size and arr.max() > 255:
        arr = arr / 257.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a broken EXIF block is ignored rather than failing the image."""
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:
        return img


def open_image(path: Path, mode: str | None = None, size: int | tuple[int, int] | None = None) -> Image.Image:
    """Decode `path` fully, upright per its EXIF tag, converted to `mode` ("L" or "RGB"; None: chosen by the file).

    `size` (a side, or height and width) lets JPEG decoding skip detail that resizing to it would throw away anyway.
    Raises `UnreadableImage` for anything PIL cannot decode.
    """
    try:
        with open_regular(path) as fh, Image.open(fh) as file:
            if size is not None and file.format == "JPEG":
                height, width = _hw(size)
                file.draft(file.mode, (width, height))
            file.load()
            img = _upright(file)
            target = mode or ("L" if img.mode in GRAY_MODES else "RGB")
            if img.mode.startswith("I"):
                img = _wide_gray_to_l(img)
            return img.convert(target) if img.mode != target else img.copy()
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError, DecompressionBombError...)
        reason = e.strerror if isinstance(e, OSError) and e.strerror else \
            str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UnreadableImage(path, reason) from e


def resize_and_crop(img: Image.Image, size: int | tuple[int, int]) -> Image.Image:
    """Resize (Lanczos, antialiased) so the image covers `size` (a side, or height × width) with its aspect ratio
    kept, then crop the centre. For a square size that is: the shorter side becomes `size`."""
    height, width = _hw(size)
    w, h = img.size
    if (w, h) != (width, height):
        scale = max(width / w, height / h)
        nw, nh = max(width, round(w * scale)), max(height, round(h * scale))
        img = img.resize((nw, nh), Image.Resampling.LANCZOS)
        left, top = (nw - width) // 2, (nh - height) // 2
        img = img.crop((left, top, left + width, top + height))
    return img


def to_tensor(img: Image.Image) -> torch.Tensor:
    """An "L" or "RGB" PIL image -> uint8 C×H×W tensor."""
    arr = np.array(img, dtype=np.uint8)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def load_image(path: Path, size: int | tuple[int, int], mode: str | None = None) -> torch.Tensor:
    """Read `path` as a uint8 C×H×W tensor of `size` (a side, or height and width; C = 1 for "L", 3 for "RGB");
    raises `UnreadableImage`."""
    return to_tensor(resize_and_crop(open_image(path, mode, size), size))


def resize_uint8(images: torch.Tensor, size: int | tuple[int, int], chunk: int = 4096) -> torch.Tensor:
    """uint8 N×C×h×w -> uint8 N×C×H×W at `size` (a side, or height and width; bilinear, antialiased), a chunk at a
    time to bound memory."""
    height, width = _hw(size)
    if images.shape[-2:] == (height, width):
        return images
    out = torch.empty((images.shape[0], images.shape[1], height, width), dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].float()
        part = F.interpolate(part, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        out[start : start + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out
