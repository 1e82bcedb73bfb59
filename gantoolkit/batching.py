"""Running a model over more inputs than fit at once: aligned chunks, moved to the model's device, results on the
CPU. Every generator, critic and classifier loop over samples goes through `in_chunks`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def in_chunks(fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor | None], size: int,
              device: torch.device | str) -> torch.Tensor:
    """`fn(*part)` for each aligned chunk of `size` rows of `inputs` (a None input stays None), each part moved to
    `device`; the outputs moved to the CPU and concatenated. Gradients are as the caller's mode says."""
    present = [t for t in inputs if t is not None]
    if not present:
        raise ValueError("in_chunks needs at least one input tensor")
    n = len(present[0])
    out = []
    for start in range(0, n, size):
        part = [t[start:start + size].to(device) if t is not None else None for t in inputs]
        out.append(fn(*part).cpu())
    return torch.cat(out)
