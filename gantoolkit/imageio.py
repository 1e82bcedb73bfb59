"""Writing what a generator makes: PNG grids, folders of PNGs, `.npz` arrays, and 2-D scatter plots."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantoolkit.data import DataInfo, to_uint8
from gantoolkit.errors import ConfigError, GanToolkitError
from gantoolkit.outputs import NPZ, PNG, PNG_FOLDER, SOFTWARE, Output, mark_npz


def grid(images: torch.Tensor, cols: int | None = None, pad: int = 2) -> torch.Tensor:
    """uint8 N×C×H×W -> one uint8 C×H'×W' grid image."""
    from torchvision.utils import make_grid

    n = images.shape[0]
    cols = cols or max(1, int(np.ceil(np.sqrt(n))))
    return make_grid(images, nrow=cols, padding=pad, pad_value=255)


def png_bytes(image: torch.Tensor) -> bytes:
    """uint8 C×H×W -> PNG file contents."""
    from PIL import Image

    array = image.permute(1, 2, 0).cpu().numpy()
    from PIL.PngImagePlugin import PngInfo

    pil = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    info = PngInfo()
    info.add_text("Software", SOFTWARE)  # how a later --out recognises a PNG gantool wrote
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def scatter(points: torch.Tensor, info: DataInfo, size: int = 384) -> torch.Tensor:
    """A 2-D point cloud drawn as a uint8 3×size×size image (mixture modes, if known, as red crosses)."""
    pts = points.detach().float().cpu()[:, :2]
    modes = torch.tensor(info.extra.get("modes", []), dtype=torch.float32).reshape(-1, 2)
    both = torch.cat([pts, modes]) if len(modes) else pts
    lo, hi = both.min(0).values, both.max(0).values
    span = (hi - lo).max().clamp_min(1e-6) * 1.15
    centre = (hi + lo) / 2
    canvas = torch.full((3, size, size), 255, dtype=torch.uint8)

    def pixel(p: torch.Tensor) -> torch.Tensor:
        xy = ((p - centre) / span + 0.5) * (size - 1)
        return torch.stack([size - 1 - xy[:, 1], xy[:, 0]], 1).round().long().clamp(0, size - 1)

    rc = pixel(pts)
    canvas[:, rc[:, 0], rc[:, 1]] = torch.tensor([30, 60, 160], dtype=torch.uint8)[:, None]
    for r, c in pixel(modes).tolist() if len(modes) else []:
        for d in range(-4, 5):
            for rr, cc in ((r + d, c), (r, c + d)):
                if 0 <= rr < size and 0 <= cc < size:
                    canvas[:, rr, cc] = torch.tensor([220, 30, 30], dtype=torch.uint8)
    return canvas


def preview(samples: torch.Tensor, info: DataInfo, cols: int | None = None) -> torch.Tensor | None:
    """A picture of model-space samples: a grid of images, or a scatter of 2-D points (None otherwise)."""
    if info.is_image:
        return grid(to_uint8(samples), cols)
    if samples.shape[1] == 2:
        return scatter(samples, info)
    return None


def sample_output(out: Path, force: bool = False, inputs: Iterable[Path | str | None] = ()) -> Output:
    """The checked output of `gantool sample --out`: FILE.png, FILE.npz or a folder (no suffix) of PNGs."""
    out = Path(out)
    suffix = out.suffix.lower()
    kinds = {".png": PNG, ".npz": NPZ, "": PNG_FOLDER}
    if suffix not in kinds:
        raise ConfigError(f"unknown output type {suffix!r} for {str(out)!r}", "use .png, .npz or a folder")
    return Output.of(out, kinds[suffix], force, inputs).check()


def save_samples(out: Output, samples: torch.Tensor, labels: torch.Tensor | None, info: DataInfo,
                 cols: int | None = None) -> str:
    """Write samples as `.png` (grid or scatter), `.npz` (arrays), or a folder of PNGs; returns what was written."""
    path = out.path
    try:
        if out.kind == NPZ:
            arrays: dict[str, Any] = {}
            if info.is_image:
                arrays["images"] = to_uint8(samples).cpu().numpy()
            else:
                arrays["points"] = samples.detach().float().cpu().numpy()
            if labels is not None:
                arrays["labels"] = labels.cpu().long().numpy()
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            out.write(mark_npz(buffer.getvalue()))
            return f"{len(samples)} samples to {path}"
        if out.kind == PNG:
            picture = preview(samples, info, cols)
            if picture is None:
                raise GanToolkitError(
                    f"{info.shape[0]}-dimensional vectors cannot be drawn as a PNG", "write .npz instead"
                )
            out.write(png_bytes(picture))
            return f"a grid of {len(samples)} samples to {path}" if info.is_image else f"a scatter plot to {path}"
        if not info.is_image:
            raise GanToolkitError("vectors cannot be written as a folder of images", "write .npz instead")
        images = to_uint8(samples).cpu()
        names = info.class_names
        files = {}
        for i, image in enumerate(images):
            tag = f"-{_safe(names[int(labels[i])])}" if labels is not None and names else ""
            files[f"{i:06d}{tag}.png"] = png_bytes(image)
        out.write_folder(files)
        return f"{len(images)} PNG files to {path}/"
    except OSError as e:
        raise GanToolkitError(f"cannot write {str(path)!r}: {e.strerror or e}") from None


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:40]
