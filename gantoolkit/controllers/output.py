"""Writing what the controllers make: PNG strips and grids, animated GIFs, and `.npz` arrays."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantoolkit.checkpoint import atomic_write
from gantoolkit.data import DataInfo, to_uint8
from gantoolkit.errors import ConfigError, GanToolkitError
from gantoolkit.imageio import grid, png_bytes, preview

#: GIF frames are enlarged (nearest neighbour) to at least this side, so 8-16 px images can be seen
GIF_MIN_SIDE = 128


def check_output(out: Path, allowed: tuple[str, ...]) -> str:
    """The lower-case suffix of `out`, checked before any work is done."""
    suffix = Path(out).suffix.lower()
    if suffix not in allowed:
        raise ConfigError(f"--out must end in {', '.join(allowed)}, got {str(out)!r}")
    if Path(out).is_dir():
        raise ConfigError(f"--out {str(out)!r} is a folder", f"give a file name ending in {', '.join(allowed)}")
    return suffix


def gif_bytes(frames: torch.Tensor, duration_ms: int = 120) -> bytes:
    """uint8 T×C×H×W -> an endlessly looping GIF, enlarged to at least GIF_MIN_SIDE pixels."""
    from PIL import Image

    scale = max(1, -(-GIF_MIN_SIDE // frames.shape[-1]))
    arrays = frames.repeat_interleave(scale, 2).repeat_interleave(scale, 3).permute(0, 2, 3, 1).cpu().numpy()
    images = [Image.fromarray(a[..., 0] if a.shape[2] == 1 else a) for a in arrays]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()


def write_arrays(out: Path, arrays: Mapping[str, np.ndarray | torch.Tensor]) -> str:
    """Arrays (tensors become numpy arrays) as one `.npz` file, written atomically."""
    payload: dict[str, Any] = {k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
                               for k, v in arrays.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **payload)
    try:
        atomic_write(Path(out), buffer.getvalue())
    except OSError as e:
        raise GanToolkitError(f"cannot write {str(out)!r}: {e.strerror or e}") from None
    return f"{', '.join(sorted(payload))} to {out}"


def write_images(out: Path, samples: torch.Tensor, info: DataInfo, cols: int,
                 arrays: Mapping[str, np.ndarray | torch.Tensor] | None = None) -> str:
    """Model-space samples (row-major, `cols` per row) as a PNG grid, a GIF (one frame per sample) or `.npz`
    (`images` uint8, or `points` for vectors, plus `arrays`). Returns what was written."""
    out = Path(out)
    suffix = out.suffix.lower()
    try:
        if suffix == ".npz":
            key = "images" if info.is_image else "points"
            data = to_uint8(samples) if info.is_image else samples.detach().float()
            return f"{len(samples)} samples: " + write_arrays(out, {key: data, **(arrays or {})})
        if not info.is_image and suffix == ".png" and samples.shape[1] == 2:
            picture = preview(samples, info)
            assert picture is not None
            atomic_write(out, png_bytes(picture))
            return f"a scatter plot of {len(samples)} points to {out}"
        if not info.is_image:
            raise ConfigError(f"{info.shape[0]}-dimensional vectors cannot be drawn as {suffix}", "write .npz instead")
        if suffix == ".png":
            atomic_write(out, png_bytes(grid(to_uint8(samples), cols)))
            rows = -(-len(samples) // cols)
            return f"{rows} row{'s' if rows > 1 else ''} of {cols} images to {out}"
        if suffix == ".gif":
            atomic_write(out, gif_bytes(to_uint8(samples)))
            return f"a GIF of {len(samples)} frames to {out}"
        raise ConfigError(f"unknown output type {suffix!r} for {str(out)!r}", "use .png, .gif or .npz")
    except OSError as e:
        raise GanToolkitError(f"cannot write {str(out)!r}: {e.strerror or e}") from None
