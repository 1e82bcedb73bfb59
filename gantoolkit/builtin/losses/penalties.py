"""Zero-centred gradient penalties on real (R1) and fake (R2) data, shared by the built-in losses."""

from __future__ import annotations

import math

import torch

from gantoolkit.components import PenaltyContext
from gantoolkit.errors import ConfigError


def check_weight(loss: str, option: str, value: float) -> None:
    """Refuse a penalty weight that is negative, NaN or infinite, in one line."""
    if not math.isfinite(value):
        raise ConfigError(f"{loss} {option} must be a finite number, got {value}", f"e.g. --loss-opt {option}=1")
    if value < 0:
        raise ConfigError(f"{loss} {option} cannot be negative, got {value}",
                          f"0 turns the penalty off; e.g. --loss-opt {option}=1")


def zero_centred(ctx: PenaltyContext, r1: float, r2: float, lazy_every: int = 1) -> torch.Tensor | None:
    """r1/2 · E‖∇ₓD(x)‖² on the real batch plus r2/2 · E‖∇ₓD(x̃)‖² on the (detached) fake batch (R1 of Mescheder et
    al. 2018, R2 its counterpart on fakes, as R3GAN uses them), through one `ctx.gradients` call. None when both
    weights are 0, or on the critic steps a lazy penalty skips: it runs every `lazy_every` steps, weighted by it."""
    terms = [(weight, batch) for weight, batch in ((r1, ctx.real), (r2, ctx.fake)) if weight]
    if not terms or ctx.critic_step % lazy_every:
        return None
    inputs = [batch.float().detach().requires_grad_(True) for _, batch in terms]
    output = ctx.critic(inputs[0]).float().sum()
    for x in inputs[1:]:
        output = output + ctx.critic(x).float().sum()
    grads = ctx.gradients(output, inputs)  # loss-scaled under fp16, so small gradients survive
    total: torch.Tensor | None = None
    for (weight, _), grad in zip(terms, grads, strict=True):
        term = 0.5 * weight * grad.float().flatten(1).pow(2).sum(1).mean()
        total = term if total is None else total + term
    assert total is not None
    return total if lazy_every == 1 else lazy_every * total
