"""Moving through z-space: linear and spherical interpolation, and vector arithmetic over the latents of seeds.

A seed names a latent: `LoadedGenerator.latents(1, seed)[0]`, the same vector on every device. Arithmetic
expressions combine such latents: `"3 - 5 + 8"` is z(3) − z(5) + z(8), and `[1,2,3]` stands for the mean of
z(1), z(2), z(3) (the DCGAN paper averages three samples per concept before doing arithmetic).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from gantoolkit.errors import ConfigError
from gantoolkit.sampling.generator import LoadedGenerator, check_seed

_TERM = re.compile(r"\s*([+-])?\s*(\d+|\[\s*\d+(?:\s*,\s*\d+)*\s*\])\s*")


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 − t)·a + t·b for each t: T×D from two D-vectors."""
    t = t.view(-1, 1).to(a.dtype)
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake; White 2016 for GAN latents): along the great circle from a to b, with the
    norm moving linearly from |a| to |b|. Gaussian latents live near a sphere, which straight lines cut through."""
    t = t.view(-1, 1).to(a.dtype)
    na, nb = a.norm(), b.norm()
    ua, ub = a / na.clamp_min(1e-12), b / nb.clamp_min(1e-12)
    omega = torch.arccos((ua * ub).sum().clamp(-1.0, 1.0))
    if float(omega.sin()) < 1e-6:  # (anti-)parallel: every great circle is as good as the straight line
        return lerp(a, b, t)
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / omega.sin()
    return direction * ((1 - t) * na + t * nb)


#: the longest strip or animation a command will render (each frame is a generator call and a tile in one image)
MAX_FRAMES = 1024


def check_frames(frames: int, flag: str = "--frames") -> None:
    if not 2 <= frames <= MAX_FRAMES:
        raise ConfigError(f"{flag} must be between 2 and {MAX_FRAMES}, got {frames}")


def interpolate(a: torch.Tensor, b: torch.Tensor, frames: int, spherical: bool = False) -> torch.Tensor:
    """`frames` latents from a to b inclusive."""
    check_frames(frames)
    t = torch.linspace(0, 1, frames)
    path = slerp(a, b, t) if spherical else lerp(a, b, t)
    path[0], path[-1] = a, b  # exactly the seeds' own latents, free of rounding
    return path


@dataclass
class Term:
    """One term of a latent expression: a sign and the seeds whose latents it averages."""

    sign: int
    seeds: list[int]

    def __str__(self) -> str:
        return str(self.seeds[0]) if len(self.seeds) == 1 else "[" + ",".join(map(str, self.seeds)) + "]"


def format_expression(terms: list[Term]) -> str:
    """Terms back as text: `[1,2,3] - [4,5,6] + 7`."""
    text = ("-" if terms[0].sign < 0 else "") + str(terms[0])
    return text + "".join(f" {'-' if t.sign < 0 else '+'} {t}" for t in terms[1:])


def parse_expression(text: str) -> list[Term]:
    """`"3 - 5 + [7,8]"` -> terms; anything else is a `ConfigError` that shows the syntax."""
    terms: list[Term] = []
    position = 0
    syntax = 'write seeds joined by + and -, a bracket averaging several, e.g. "[1,2,3] - [4,5,6] + 7"'
    while position < len(text):
        match = _TERM.match(text, position)
        if not match or match.end() == position or (terms and match.group(1) is None):
            raise ConfigError(f"cannot read the latent expression {text!r} at {text[position:]!r}", syntax)
        sign = -1 if match.group(1) == "-" else 1
        seeds = [int(s) for s in re.findall(r"\d+", match.group(2))]
        for seed in seeds:
            check_seed(seed)
        terms.append(Term(sign, seeds))
        position = match.end()
    if not terms:
        raise ConfigError("the latent expression is empty", syntax)
    return terms


def seed_latent(model: LoadedGenerator, seed: int) -> torch.Tensor:
    """The latent that `seed` names for this generator."""
    return model.latents(1, seed)[0]


def evaluate_expression(model: LoadedGenerator, terms: list[Term]) -> tuple[torch.Tensor, torch.Tensor]:
    """(the latent of each term, T×D; their signed sum, D)."""
    parts = torch.stack([torch.stack([seed_latent(model, s) for s in term.seeds]).mean(0) for term in terms])
    signs = torch.tensor([float(term.sign) for term in terms]).view(-1, 1)
    return parts, (signs * parts).sum(0)
