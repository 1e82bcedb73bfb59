"""Classifier-gradient editing: change only z so that a frozen classifier sees more of a target class.

The course's recipe: with the generator G and the classifier C frozen, take K gradient-ascent steps on z of

    score(z) = C(G(z))[target] − P · ‖C(G(z))[others] − C(G(z₀))[others]‖₂

so the target logit rises while the penalty P holds the other classes' logits (the correlated features) where they
started. Each sample's gradient is its own (the score is summed over the batch, not averaged), so the step size
does not depend on how many latents are edited at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from gantoolkit.classifiers import Classifier
from gantoolkit.config import MAX_ITERATIONS
from gantoolkit.errors import ConfigError
from gantoolkit.sampling.generator import LoadedGenerator


@dataclass
class EditResult:
    """What an edit did: latents, logits before and after, and the target's probability at every step."""

    target: int
    z_before: torch.Tensor
    z_after: torch.Tensor
    logits_before: torch.Tensor
    logits_after: torch.Tensor
    #: (steps + 1) × N: the classifier's probability of the target, before the first step and after each step
    target_prob: torch.Tensor
    #: (steps + 1) × N × D: z before the first step and after each step (only when asked for)
    z_path: torch.Tensor | None = None

    def other_logit_change(self) -> torch.Tensor:
        """Per sample: the mean absolute change of the non-target logits."""
        others = [k for k in range(self.logits_before.shape[1]) if k != self.target]
        return (self.logits_after[:, others] - self.logits_before[:, others]).abs().mean(1)


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """No parameter of `modules` requires a gradient inside the block (restored afterwards)."""
    saved = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def check_pair(model: LoadedGenerator, classifier: Classifier) -> None:
    """The classifier must have been trained on images like this generator's (same channels and size)."""
    if not model.data.is_image:
        raise ConfigError("this generator makes vectors; classifier editing needs an image generator")
    channels = model.data.shape[0]
    hint = "train a classifier on the generator's data: gantool classifier train --data ... --image-size ..."
    if classifier.info.input_shape[0] != channels:
        raise ConfigError(
            f"the classifier takes {classifier.info.input_shape[0]}-channel images, the generator makes {channels}",
            hint,
        )
    classifier.check_shape(tuple(model.data.shape), "the generator makes", hint)


def edit_latents(
    model: LoadedGenerator,
    classifier: Classifier,
    z: torch.Tensor,
    target: int,
    steps: int = 20,
    step_size: float = 0.1,
    penalty: float = 0.0,
    labels: torch.Tensor | None = None,
    codes: torch.Tensor | None = None,
    keep_path: bool = False,
) -> EditResult:
    """Gradient ascent on z only (see the module docstring); G and C are frozen and left unchanged."""
    check_pair(model, classifier)
    if not 0 <= steps <= MAX_ITERATIONS:
        raise ConfigError(f"--steps must be between 0 and {MAX_ITERATIONS:,}, got {steps}")
    if not step_size > 0:
        raise ConfigError(f"--step-size must be positive, got {step_size}")
    if penalty < 0:
        raise ConfigError(f"--penalty must be zero or more, got {penalty}")
    if not 0 <= target < classifier.num_classes:
        hint = f"the classifier has classes 0..{classifier.num_classes - 1}"
        raise ConfigError(f"target {target} is out of range", hint)
    device = model.device
    G, C = model.generator, classifier.to(device)
    others = torch.tensor([k for k in range(classifier.num_classes) if k != target], device=device)
    labels = labels.to(device) if labels is not None else None
    codes = codes.to(device) if codes is not None else None
    G.eval()
    C.eval()
    with frozen(G, C):
        z0 = z.detach().to(device).float()
        current = z0.clone().requires_grad_(True)
        start: torch.Tensor | None = None
        probs, path = [], [z0.cpu()]
        for _ in range(steps):
            logits = C.logits(G(current, labels, codes)).float()
            start = logits.detach() if start is None else start
            probs.append(logits.detach().softmax(1)[:, target])
            score = logits[:, target]
            if penalty > 0:
                score = score - penalty * torch.linalg.vector_norm(logits[:, others] - start[:, others], dim=1)
            (grad,) = torch.autograd.grad(score.sum(), current)
            with torch.no_grad():
                current += step_size * grad
            if keep_path:
                path.append(current.detach().cpu().clone())
        with torch.no_grad():
            final = C.logits(G(current, labels, codes)).float()
        start = final if start is None else start
        probs.append(final.softmax(1)[:, target])
    return EditResult(target, z0.cpu(), current.detach().cpu(), start.cpu(), final.cpu(), torch.stack(probs).cpu(),
                      torch.stack(path) if keep_path else None)
