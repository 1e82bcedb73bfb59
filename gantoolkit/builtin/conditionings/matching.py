"""The matching-aware critic's term (GAN-CLS, Reed et al. 2016), shared by `--cond-opt match=W` of the one-hot scheme
and `--controller matching` (which adds it to any labelled conditioning).

The critic of a conditional GAN is only asked whether an image is real, so it may learn little about whether the
image fits its label, and a generator can pass with in-between samples (a thick 1 that reads as an 8). GAN-CLS also
shows the critic real images under wrong labels as something to reject. Here that is a ranking, so it works with any
loss (a Wasserstein critic's scores have no fixed offset, and a bounded term cannot run away):

    mean softplus(D(x, y') − D(x, y))     y the label of x, y' ≠ y drawn at random from the run's generator

One more critic pass per use: x under y'.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gantoolkit.components import ControllerContext
from gantoolkit.errors import ConfigError


def wrong_label_ranking(ctx: ControllerContext, x: torch.Tensor, labels: torch.Tensor | None,
                        scores: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """mean softplus(D(x, y') − D(x, y)) for y' a random class other than each label y; `scores` is D(x, y)."""
    if ctx.fake_labels is None or labels is None or ctx.critic is None or scores is None or num_classes < 2:
        raise ConfigError("the matching-aware term needs a conditional model whose critic sees the labels",
                          "add a conditioning such as --cond onehot, on a labelled dataset")
    shift = torch.randint(1, num_classes, labels.shape, generator=ctx.generator, device=labels.device)
    wrong = (labels + shift) % num_classes
    return F.softplus(ctx.critic(x, wrong).float() - scores.float()).mean()
