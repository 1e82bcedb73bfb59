"""Writing what the controllers make: PNG strips and grids, animated GIFs, and `.npz` arrays."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantoolkit.data import DataInfo, to_uint8
from gantoolkit.errors import ConfigError, GanToolkitError
from gantoolkit.imageio import grid, png_bytes, preview
from gantoolkit.outputs import GIF, NPZ, PNG, SOFTWARE, Output, kind_for_suffix, mark_npz

#: GIF frames are enlarged (nearest neighbour) to at least this side, so 8-16 px images can be seen
GIF_MIN_SIDE = 128


def check_output(out: Path, allowed: tuple[str, ...], force: bool = False, inputs: Iterable[Path | str | None] = (),
                 flag: str = "--out") -> Output:
    """The checked output `out` (one of the `allowed` suffixes), before any work is done."""
    suffix = Path(out).suffix.lower()
    if suffix not in allowed:
        raise ConfigError(f"{flag} must end in {', '.join(allowed)}, got {str(out)!r}")
    kind = kind_for_suffix(Path(out))
    assert kind is not None
    return Output.of(Path(out), kind, force, inputs, flag).check()


def gif_bytes(frames: torch.Tensor, duration_ms: int = 120) -> bytes:
    """uint8 T×C×H×W -> an endlessly looping GIF, enlarged to at least GIF_MIN_SIDE pixels."""
    from PIL import Image

    scale = max(1, -(-GIF_MIN_SIDE // frames.shape[-1]))
    arrays = frames.repeat_interleave(scale, 2).repeat_interleave(scale, 3).permute(0, 2, 3, 1).cpu().numpy()
    images = [Image.fromarray(a[..., 0] if a.shape[2] == 1 else a) for a in arrays]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0,
                   comment=SOFTWARE.encode())  # how a later --out recognises a GIF gantool wrote
    return buffer.getvalue()


def write_arrays(out: Output, arrays: Mapping[str, np.ndarray | torch.Tensor]) -> str:
    """Arrays (tensors become numpy arrays) as one `.npz` file, written atomically."""
    payload: dict[str, Any] = {k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
                               for k, v in arrays.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **payload)
    try:
        out.write(mark_npz(buffer.getvalue()))
    except OSError as e:
        raise GanToolkitError(f"cannot write {str(out.path)!r}: {e.strerror or e}") from None
    return f"{', '.join(sorted(payload))} to {out.path}"


def write_images(out: Output, samples: torch.Tensor, info: DataInfo, cols: int,
                 arrays: Mapping[str, np.ndarray | torch.Tensor] | None = None) -> str:
    """Model-space samples (row-major, `cols` per row) as a PNG grid, a GIF (one frame per sample) or `.npz`
    (`images` uint8, or `points` for vectors, plus `arrays`). Returns what was written."""
    path = out.path
    try:
        if out.kind == NPZ:
            key = "images" if info.is_image else "points"
            data = to_uint8(samples) if info.is_image else samples.detach().float()
            return f"{len(samples)} samples: " + write_arrays(out, {key: data, **(arrays or {})})
        if not info.is_image and out.kind == PNG and samples.shape[1] == 2:
            picture = preview(samples, info)
            assert picture is not None
            out.write(png_bytes(picture))
            return f"a scatter plot of {len(samples)} points to {path}"
        if not info.is_image:
            raise ConfigError(f"{info.shape[0]}-dimensional vectors cannot be drawn as {path.suffix}",
                              "write .npz instead")
        if out.kind == PNG:
            out.write(png_bytes(grid(to_uint8(samples), cols)))
            rows = -(-len(samples) // cols)
            return f"{rows} row{'s' if rows > 1 else ''} of {cols} images to {path}"
        if out.kind == GIF:
            out.write(gif_bytes(to_uint8(samples)))
            return f"a GIF of {len(samples)} frames to {path}"
        raise ConfigError(f"unknown output type {path.suffix!r} for {str(path)!r}", "use .png, .gif or .npz")
    except OSError as e:
        raise GanToolkitError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
