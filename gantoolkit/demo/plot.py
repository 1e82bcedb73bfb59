"""The demo's scatter plot of 2-D points: fixed axes with ticks, the data's true modes marked, and a legend.

The axes are chosen once per model (`plot_bounds`), so moving a control moves the points, not the frame.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gantoolkit.data import DataInfo

#: the plot's side in pixels, and the margin left for the axes' numbers
SIDE, MARGIN = 480, 44
POINT = (30, 90, 200)
MODE = (210, 30, 30)


def plot_bounds(info: DataInfo, sample: torch.Tensor) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the true modes with room around them (a quarter of their span, at least four standard
    deviations) when the data says where they are, otherwise the central 98% of `sample` (points the generator
    draws); padded by a tenth, the same range on both axes."""
    modes = np.asarray(info.extra.get("modes", []), dtype=np.float64).reshape(-1, 2)
    if len(modes):
        spread = max(4 * float(info.extra.get("std", 0.05)), 0.25 * float((modes.max(0) - modes.min(0)).max()))
        lo, hi = modes.min(0) - spread, modes.max(0) + spread
    else:
        pts = sample.detach().float().cpu().numpy()[:, :2]
        lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-3) * 1.1
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


def _ticks(low: float, high: float) -> list[float]:
    """Round numbers between low and high, about five of them."""
    raw = (high - low) / 5
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    return [k * step for k in range(math.ceil(low / step), math.floor(high / step) + 1)]


def scatter_plot(points: torch.Tensor, info: DataInfo, bounds: tuple[float, float, float, float],
                 side: int = SIDE) -> np.ndarray:
    """H×W×3 uint8: `points` within `bounds` (points outside are drawn at the edge), the modes as red crosses."""
    x0, x1, y0, y1 = bounds
    image = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, top, right, bottom = MARGIN, 8, side - 8, side - MARGIN + 12

    def to_pixel(xy: np.ndarray) -> np.ndarray:
        u = left + (xy[:, 0] - x0) / (x1 - x0) * (right - left)
        v = bottom - (xy[:, 1] - y0) / (y1 - y0) * (bottom - top)
        return np.stack([np.clip(u, left, right), np.clip(v, top, bottom)], 1)

    draw.rectangle([left, top, right, bottom], outline=(90, 90, 90))
    for t in _ticks(x0, x1):
        (u, _), = to_pixel(np.array([[t, y0]]))
        draw.line([u, bottom, u, bottom + 4], fill=(90, 90, 90))
        draw.text((u, bottom + 6), f"{t:g}", fill="black", font=font, anchor="ma")
    for t in _ticks(y0, y1):
        (_, v), = to_pixel(np.array([[x0, t]]))
        draw.line([left - 4, v, left, v], fill=(90, 90, 90))
        draw.text((left - 6, v), f"{t:g}", fill="black", font=font, anchor="rm")
    pts = points.detach().float().cpu().numpy()[:, :2]
    for u, v in to_pixel(pts):
        draw.ellipse([u - 1.5, v - 1.5, u + 1.5, v + 1.5], fill=POINT)
    modes = np.asarray(info.extra.get("modes", []), dtype=np.float64).reshape(-1, 2)
    for u, v in to_pixel(modes) if len(modes) else []:
        draw.line([u - 5, v, u + 5, v], fill=MODE, width=2)
        draw.line([u, v - 5, u, v + 5], fill=MODE, width=2)
    entries = [(f"generated ({len(pts)} points)", POINT, "dot")]
    if len(modes):
        entries.append((f"true modes ({len(modes)})", MODE, "cross"))
    width = max(int(draw.textlength(text, font=font)) for text, _, _ in entries) + 28
    box = [right - width - 6, top + 6, right - 6, top + 8 + 16 * len(entries)]
    draw.rectangle(box, fill="white", outline=(160, 160, 160))
    for k, (text, colour, mark) in enumerate(entries):
        u, v = box[0] + 10, box[1] + 9 + 16 * k
        if mark == "dot":
            draw.ellipse([u - 3, v - 3, u + 3, v + 3], fill=colour)
        else:
            draw.line([u - 5, v, u + 5, v], fill=colour, width=2)
            draw.line([u, v - 5, u, v + 5], fill=colour, width=2)
        draw.text((u + 12, v), text, fill="black", font=font, anchor="lm")
    return np.asarray(image)
