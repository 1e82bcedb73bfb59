"""ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"): the cheap subset of
StyleGAN2-ADA's pipeline (NVlabs/stylegan2-ada-pytorch, training/augment.py) with its adaptive probability
(training/training_loop.py).

Each transform is applied to each sample with probability p, with the reference's distributions, in its order:

- x-flip (half of the chosen samples are mirrored), a rotation by a uniform multiple of 90 degrees, an integer
  translation of up to 1/8 of the side per axis (U(-1/8, 1/8) of the side, rounded), executed as one pixel blit
  with reflected borders (the reference pads with reflection too);
- brightness + N(0, 0.2), contrast x 2^N(0, 0.5) (about 0, the middle grey of [-1, 1]), saturation: the distance
  from the channel mean x 2^N(0, 1) (colour images only).

p adapts from the overfitting heuristic r_t = E[sign(D(real))] on the augmented reals (the scores centred on the
loss's `score_midpoint` by the trainer; `reads_score_sign` makes the banner say when the loss has none): every
`interval` critic steps, p moves by sign(r_t - target) x (reals seen in those steps) / (kimg x 1000), clamped to
[0, P_MAX]. With `adapt=false` p stays fixed, or with `ramp=K` rises from 0 to `p` over K thousand reals along
R3GAN's cosine (brownvc/R3GAN, training/training_loop.py: its presets ramp p to 0.55 or 0.3 over 20M images). All of
it stays on the device (no host sync); p and the running sums are saved in every checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from gantoolkit.builtin.augment.diffaug import parse_words
from gantoolkit.components import Augmentation
from gantoolkit.errors import ConfigError

if TYPE_CHECKING:
    from gantoolkit.data import DataInfo

OPS = ("xflip", "rotate90", "xint", "brightness", "contrast", "saturation")
DEFAULT_OPS = ",".join(OPS)
#: p stays below 1 (at 1 every sample is transformed and the transforms could leak into the generator)
P_MAX = 0.999
#: the reference's strengths
BRIGHTNESS_STD, CONTRAST_STD, SATURATION_STD = 0.2, 0.5, 1.0
#: cos and sin of 0, 90, 180 and 270 degrees
_COS = (1, 0, -1, 0)
_SIN = (0, 1, 0, -1)


def _reflect(index: torch.Tensor, n: int) -> torch.Tensor:
    """Indices outside [0, n) reflected back in, the edge not repeated (torch's 'reflect' padding)."""
    if n == 1:
        return torch.zeros_like(index)
    period = 2 * (n - 1)
    m = torch.remainder(index, period)
    return torch.where(m >= n, period - m, m)


def blit(x: torch.Tensor, flip: torch.Tensor, quarter_turns: torch.Tensor, tx: torch.Tensor,
         ty: torch.Tensor) -> torch.Tensor:
    """Each image x-flipped where `flip`, then turned by `quarter_turns` x 90 degrees, then moved by (tx, ty)
    pixels (columns, rows), borders reflected: the reference's inverse transform out -> in, composed exactly and
    executed as one gather (differentiable in x). Quarter turns need square images."""
    b, c, h, w = x.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    dev = x.device
    cols = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, w) - cx
    rows = torch.arange(h, device=dev, dtype=torch.float32).view(1, h, 1) - cy
    u = cols - tx.view(-1, 1, 1).float()  # the translation's inverse
    v = rows - ty.view(-1, 1, 1).float()
    k = quarter_turns.long().view(-1, 1, 1)
    cos = torch.tensor(_COS, device=dev, dtype=torch.float32)[k]
    sin = torch.tensor(_SIN, device=dev, dtype=torch.float32)[k]
    u, v = cos * u - sin * v, sin * u + cos * v  # the rotation's inverse (rotate2d_inv(-pi/2 k))
    u = u * (1 - 2 * flip.view(-1, 1, 1).float())  # the flip's inverse
    src_c = _reflect(torch.round(u + cx).long(), w)
    src_r = _reflect(torch.round(v + cy).long(), h)
    index = (src_r * w + src_c).view(b, 1, h * w).expand(b, c, h * w)
    return x.reshape(b, c, h * w).gather(2, index).view(b, c, h, w)


def colour(x: torch.Tensor, bright: torch.Tensor, contr: torch.Tensor, sat: torch.Tensor | None) -> torch.Tensor:
    """(x + brightness) x contrast, then the distance from the channel mean x saturation (per sample)."""
    x = (x + bright.view(-1, 1, 1, 1).to(x.dtype)) * contr.view(-1, 1, 1, 1).to(x.dtype)
    if sat is not None:
        mean = x.mean(dim=1, keepdim=True)
        x = mean + (x - mean) * sat.view(-1, 1, 1, 1).to(x.dtype)
    return x


class ADA(Augmentation):
    """Adaptive discriminator augmentation. target: the r_t = E[sign D(real)] that p steers to (0.6, the paper's);
    p: the probability to start from; interval: critic steps between adjustments (4); kimg: thousands of real
    images over which p can cross [0, 1] (StyleGAN2-ADA's 500 is 2% of its 25M-image runs; 100 lets p cross in
    1,560 critic steps at batch 64, a third of a digits run); adapt: false keeps p fixed; ramp: with adapt=false,
    thousands of reals over which p rises from 0 to `p` (R3GAN's schedule; 0: no ramp); ops: which transforms;
    xint_max: the largest translation, a share of the side (1/8)."""

    score_sign_fix = "use --augment diffaug, or a fixed probability (--augment-opt adapt=false,p=0.3)"

    def __init__(self, target: float = 0.6, p: float = 0.0, interval: int = 4, kimg: float = 100.0,
                 adapt: bool = True, ramp: float = 0.0, ops: str = DEFAULT_OPS, xint_max: float = 0.125) -> None:
        if not 0 < target < 1:
            raise ConfigError(f"augmentation 'ada': target is the wanted E[sign D(real)], in (0, 1), got {target}",
                              "the paper's is 0.6")
        if not 0 <= p <= P_MAX:
            raise ConfigError(f"augmentation 'ada': p is a probability in [0, {P_MAX}], got {p}")
        if interval < 1:
            raise ConfigError(f"augmentation 'ada': interval must be at least 1 critic step, got {interval}")
        if not 0 < kimg < float("inf"):
            raise ConfigError(f"augmentation 'ada': kimg must be a positive number of thousands of images, got {kimg}")
        if not 0 < xint_max <= 0.5:
            raise ConfigError(f"augmentation 'ada': xint_max is a share of the side in (0, 0.5], got {xint_max}")
        if not 0 <= ramp < float("inf"):
            raise ConfigError(f"augmentation 'ada': ramp is a number of thousands of reals, at least 0, got {ramp}")
        if ramp and not p:
            raise ConfigError("augmentation 'ada': ramp raises p from 0 to the p given, and p is 0",
                              f"--augment-opt adapt=false,p=0.3,ramp={ramp:g}")
        if ramp and adapt:
            raise ConfigError("augmentation 'ada': ramp sets p by schedule and adapt sets it from the critic; "
                              "choose one", f"--augment-opt adapt=false,p={p},ramp={ramp:g} to ramp")
        self.ops = parse_words(ops, OPS, "ada", "op")
        self.target, self.interval, self.kimg, self.adapt, self.xint_max = target, interval, kimg, adapt, xint_max
        self.reads_score_sign = adapt
        self.ramp, self.p_final = float(ramp), float(p)
        self.p = torch.tensor(0.0 if ramp else float(p))
        self.signs = torch.zeros(())  # the sum of sign(D(real)) since the last adjustment
        self.seen = torch.zeros(())  # the reals scored since then (both over every process)
        self.images = torch.zeros(())  # the reals scored in the whole run (the ramp's clock)
        self.calls = 0  # critic steps since then (a host count: the schedule needs no device value)

    def setup(self, data: DataInfo) -> None:
        super().setup(data)  # images only
        if "rotate90" in self.ops and data.shape[1] != data.shape[2]:
            raise ConfigError(f"augmentation 'ada': 90-degree rotations need square images, and {data.source!r} "
                              f"is {data.shape[1]}x{data.shape[2]}",
                              "use --image-size, or --augment-opt ops= without rotate90")

    def _to(self, device: torch.device) -> None:
        if self.p.device != device:
            self.p, self.signs, self.seen, self.images = (t.to(device) for t in (self.p, self.signs, self.seen,
                                                                                 self.images))

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        self._to(x.device)
        b, dev = x.shape[0], x.device

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(shape, generator=generator, device=dev)

        def chosen(*shape: int) -> torch.Tensor:  # each sample (row) with probability p
            return rand(*shape) < self.p

        zeros = torch.zeros(b, device=dev)
        flip = turns = tx = ty = zeros
        if "xflip" in self.ops:
            i = torch.floor(rand(b) * 2)
            flip = torch.where(chosen(b), i, zeros)
        if "rotate90" in self.ops:
            i = torch.floor(rand(b) * 4)
            turns = torch.where(chosen(b), i, zeros)
        if "xint" in self.ops:
            t = (rand(b, 2) * 2 - 1) * self.xint_max
            t = torch.where(chosen(b, 1), t, torch.zeros_like(t))
            tx, ty = torch.round(t[:, 0] * x.shape[3]), torch.round(t[:, 1] * x.shape[2])
        if {"xflip", "rotate90", "xint"} & set(self.ops):
            x = blit(x, flip, turns, tx, ty)
        ones = torch.ones(b, device=dev)
        bright, contr, sat = zeros, ones, None
        if "brightness" in self.ops:
            value = torch.randn(b, generator=generator, device=dev) * BRIGHTNESS_STD
            bright = torch.where(chosen(b), value, zeros)
        if "contrast" in self.ops:
            value = torch.exp2(torch.randn(b, generator=generator, device=dev) * CONTRAST_STD)
            contr = torch.where(chosen(b), value, ones)
        if "saturation" in self.ops and x.shape[1] > 1:
            value = torch.exp2(torch.randn(b, generator=generator, device=dev) * SATURATION_STD)
            sat = torch.where(chosen(b), value, ones)
        if {"brightness", "contrast", "saturation"} & set(self.ops):
            x = colour(x, bright, contr, sat)
        return x

    def observe(self, real_scores: torch.Tensor, total: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self._to(real_scores.device)
        signs = real_scores.detach().float().sign()
        stats = torch.stack([signs.sum(), signs.new_tensor(float(signs.numel()))])
        if total is not None:  # every process's reals: the sums, and so p, are the same on every process
            stats = total(stats)
        self.signs, self.seen, self.images = self.signs + stats[0], self.seen + stats[1], self.images + stats[1]
        self.calls += 1
        if self.ramp:  # R3GAN's cosine from 0 to p_final, then flat
            done = (self.images / (self.ramp * 1000)).clamp(max=1)
            self.p = self.p_final * 0.5 * (1 - torch.cos(torch.pi * done))
        if self.calls < self.interval:
            return
        if self.adapt:
            r_t = self.signs / self.seen.clamp(min=1)
            self.p = (self.p + torch.sign(r_t - self.target) * self.seen / (self.kimg * 1000)).clamp(0, P_MAX)
        self.signs, self.seen, self.calls = torch.zeros_like(self.signs), torch.zeros_like(self.seen), 0

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"p": self.p.detach().clone(), "signs": self.signs.detach().clone(),
                "seen": self.seen.detach().clone(), "images": self.images.detach().clone(),
                "calls": torch.tensor(self.calls)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if not state:  # a checkpoint of a run without ada
            return
        device = self.p.device
        self.p, self.signs, self.seen = (state[k].detach().clone().float().reshape(()).to(device)
                                         for k in ("p", "signs", "seen"))
        images = state.get("images")  # absent from checkpoints written before the ramp
        self.images = torch.zeros((), device=device) if images is None else images.detach().clone().float().reshape(
            ()).to(device)
        self.calls = int(state["calls"])

    def scalars(self) -> dict[str, torch.Tensor]:
        return {"ada_p": self.p}
