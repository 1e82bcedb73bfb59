"""Writing what a generator and the controllers make: PNG grids and strips, folders of PNGs, animated GIFs, `.npz`
arrays, and 2-D scatter plots."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantoolkit.data import DataInfo, to_uint8
from gantoolkit.errors import ConfigError, GanToolkitError
from gantoolkit.files.outputs import GIF, NPZ, PNG, PNG_FOLDER, SOFTWARE, Output, kind_for_suffix, mark_npz


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


# -- what the controllers write --------------------------------------------------------------------------------

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
