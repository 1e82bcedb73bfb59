"""Optimizers by name, the learning-rate recipe (flags > loss recommendation), and the generator's EMA."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from gantoolkit.components import Loss, OptimizerSpec
from gantoolkit.config import RunConfig
from gantoolkit.errors import ConfigError, did_you_mean

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}
_HAS_BETAS = {"adam", "adamw"}


@dataclass(frozen=True)
class OptimizerPlan:
    """The optimizer each network gets, after the user's flags are applied to the loss's recommendation."""

    name: str
    lr_g: float
    lr_d: float
    betas: tuple[float, float] | None
    kwargs: dict

    def build(self, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        kwargs = dict(self.kwargs)
        if self.betas is not None and self.name in _HAS_BETAS:
            kwargs["betas"] = tuple(self.betas)
        return OPTIMIZERS[self.name](params, lr=lr, **kwargs)


def plan_optimizers(config: RunConfig, loss: Loss) -> OptimizerPlan:
    recommended: OptimizerSpec = loss.optimizer()
    name = (config.optimizer or recommended.name).lower()
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}", did_you_mean(name, OPTIMIZERS))
    kwargs = recommended.kwargs if name == recommended.name else {}
    betas = config.betas if config.betas is not None else recommended.betas
    if betas is not None:
        betas = (float(betas[0]), float(betas[1]))
    return OptimizerPlan(
        name=name,
        lr_g=config.lr_g or config.lr or recommended.lr,
        lr_d=config.lr_d or config.lr or recommended.lr,
        betas=betas,
        kwargs=dict(kwargs),
    )


def decay_factor(step: int, total: int, share: float) -> float:
    """The learning-rate multiplier of step `step` (0-based) of `total` under `--lr-decay share`: 1 until the last
    `share` of the run, then falling linearly to 0 at its end (as SNGAN's recipes do). A function of the step alone,
    so a resumed run takes exactly the rates an uninterrupted one would."""
    decay_steps = share * total
    if decay_steps <= 0:
        return 1.0
    return min(1.0, max(0.0, (total - step) / decay_steps))


class EMA:
    """An exponential moving average of a module's parameters (buffers are copied), with decay warm-up
    min(decay, (1 + t) / (10 + t)) so that short runs are not dominated by the initial weights."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(list(self.module.parameters()), list(model.parameters()), 1.0 - decay)
        for mine, theirs in zip(self.module.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**{f"module.{k}": v for k, v in self.module.state_dict().items()},
                "updates": torch.tensor(self.updates)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict({k[len("module."):]: v for k, v in state.items() if k.startswith("module.")})
        self.updates = int(state["updates"])


class Update:
    """One optimizer update of one network: clear the gradients, backward (loss-scaled under fp16), average the
    gradients over the processes of a distributed run, step (skipped by the scaler when gradients overflowed).

    `skipped` is a device flag (no host sync) telling whether the last update was skipped by the loss scaler."""

    def __init__(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None,
                 average: Callable[[list[nn.Parameter]], None] | None = None) -> None:
        self.optimizer, self.scaler, self.average = optimizer, scaler, average
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.skipped: torch.Tensor | None = None
        self._one = torch.ones((), device=self.params[0].device) if scaler is not None and self.params else None

    def __call__(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            if self.average is not None:
                self.average(self.params)
            self.optimizer.step()
            return
        assert self._one is not None  # set whenever there is a scaler (an optimizer has parameters)
        before = self.scaler.scale(self._one)
        self.scaler.scale(loss).backward()
        if self.average is not None:
            self.average(self.params)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.skipped = self.scaler.scale(self._one) < before  # the scale only shrinks after an overflow

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
