"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The math of the reference implementation (mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py), on images in
model space ([-1, 1]), one draw per sample, every draw from the generator passed in:

- color: brightness + U(-0.5, 0.5); saturation (x - channel mean) * U(0, 2) + channel mean; contrast
  (x - image mean) * U(0.5, 1.5) + image mean. No clamping (the reference has none).
- translation: a shift of up to 1/8 of the side along each axis, U{-s..s}, the uncovered border zero.
- cutout: a square of half the side set to zero, its centre anywhere in the image (clipped at the border).
"""

from __future__ import annotations

import torch

from gantoolkit.components import Augmentation
from gantoolkit.errors import ConfigError

#: the reference's policy words, in its order
OPS = ("color", "translation", "cutout")
DEFAULT_POLICY = "color,translation,cutout"


def parse_words(text: str, known: tuple[str, ...], what: str, option: str) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'), each a known word, none twice; a `ConfigError` naming the bad word otherwise."""
    words = tuple(w.strip() for w in str(text).replace("+", ",").split(",") if w.strip())
    if not words:
        raise ConfigError(f"augmentation {what!r}: {option} names nothing", f"choose from {', '.join(known)}")
    for word in words:
        if word not in known:
            raise ConfigError(f"augmentation {what!r}: unknown {option} {word!r}", f"choose from {', '.join(known)}")
    twice = sorted({w for w in words if words.count(w) > 1})
    if twice:
        raise ConfigError(f"augmentation {what!r}: {option} names {', '.join(twice)} twice")
    return words


def _uniform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """B x 1 x 1 x 1 draws from U(0, 1) in x's dtype (drawn in float32, so every precision draws alike)."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device).to(x.dtype)


def brightness(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x + (_uniform(x, generator) - 0.5)


def saturation(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, generator) * 2) + mean


def contrast(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def translate(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """out[b, :, i, j] = x[b, :, i + rows[b], j + cols[b]], zero where that lies outside (the reference's
    zero-padded translation); differentiable in x."""
    b, c, h, w = x.shape
    src_r = torch.arange(h, device=x.device)[None, :] + rows.view(-1, 1)  # B x H
    src_c = torch.arange(w, device=x.device)[None, :] + cols.view(-1, 1)  # B x W
    inside = ((src_r >= 0) & (src_r < h))[:, None, :, None] & ((src_c >= 0) & (src_c < w))[:, None, None, :]
    out = x.gather(2, src_r.clamp(0, h - 1)[:, None, :, None].expand(b, c, h, w))
    out = out.gather(3, src_c.clamp(0, w - 1)[:, None, None, :].expand(b, c, h, w))
    return out * inside.to(x.dtype)


def random_translation(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    sh, sw = int(x.shape[2] * ratio), int(x.shape[3] * ratio)
    rows = torch.randint(-sh, sh + 1, (x.shape[0],), generator=generator, device=x.device)
    cols = torch.randint(-sw, sw + 1, (x.shape[0],), generator=generator, device=x.device)
    return translate(x, rows, cols)


def cutout_mask(shape: tuple[int, ...], top: torch.Tensor, left: torch.Tensor, size: tuple[int, int],
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """B x 1 x H x W: 0 inside the size[0] x size[1] rectangles starting at (top[b], left[b]) (clipped to the
    image), 1 elsewhere."""
    _, _, h, w = shape
    r = torch.arange(h, device=top.device)[None, :]
    c = torch.arange(w, device=top.device)[None, :]
    in_r = (r >= top.view(-1, 1)) & (r < top.view(-1, 1) + size[0])
    in_c = (c >= left.view(-1, 1)) & (c < left.view(-1, 1) + size[1])
    return (~(in_r[:, :, None] & in_c[:, None, :])).to(dtype)[:, None]


def random_cutout(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    size = int(x.shape[2] * ratio), int(x.shape[3] * ratio)
    # the reference's offsets: a centre in [0, H] (even sizes) or [0, H) (odd), the square's corner size // 2 before it
    cy = torch.randint(0, x.shape[2] + (1 - size[0] % 2), (x.shape[0],), generator=generator, device=x.device)
    cx = torch.randint(0, x.shape[3] + (1 - size[1] % 2), (x.shape[0],), generator=generator, device=x.device)
    return x * cutout_mask(tuple(x.shape), cy - size[0] // 2, cx - size[1] // 2, size, x.dtype)


class DiffAugment(Augmentation):
    """DiffAugment. policy: which of color, translation, cutout, applied in that order of the words given (the
    paper's strongest, for data as small as 100 images, is all three); translation: the largest shift as a share
    of the side (1/8); cutout: the cut square's side as a share of the image's (1/2)."""

    def __init__(self, policy: str = DEFAULT_POLICY, translation: float = 0.125, cutout: float = 0.5) -> None:
        self.policy = parse_words(policy, OPS, "diffaug", "policy")
        for name, value in (("translation", translation), ("cutout", cutout)):
            if not 0 < value < 1:
                raise ConfigError(f"augmentation 'diffaug': {name} is a share of the image's side in (0, 1), "
                                  f"got {value}")
        self.translation, self.cutout = translation, cutout

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for op in self.policy:
            if op == "color":
                x = contrast(saturation(brightness(x, generator), generator), generator)
            elif op == "translation":
                x = random_translation(x, generator, self.translation)
            else:
                x = random_cutout(x, generator, self.cutout)
        return x
