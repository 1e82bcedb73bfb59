"""Class coverage of labelled data, and "you get what you ask for" for conditional models.

Generated samples are classified by a classifier of the data (images) or by their nearest mode (2-D mixtures).
"""

from __future__ import annotations

import math

import torch

from gantoolkit.builtin.metrics.features import FEATURE_BATCH, classifier, why_no_classifier
from gantoolkit.builtin.metrics.mixture import nearest_mode
from gantoolkit.evaluation import EvalContext, Metric


def predicted_classes(ctx: EvalContext) -> torch.Tensor:
    """The class of every generated sample (computed once)."""

    def make() -> torch.Tensor:
        x = ctx.fake()[0]
        if "modes" in ctx.info.extra and not ctx.info.is_image:
            return nearest_mode(x, ctx.info.extra["modes"])
        model = classifier(ctx)
        with torch.no_grad():
            parts = [model.logits(x[i:i + FEATURE_BATCH].to(ctx.device)).argmax(1).cpu()
                     for i in range(0, len(x), FEATURE_BATCH)]
        return torch.cat(parts)

    return ctx.memo("predicted", make)


def why_no_classes(ctx: EvalContext) -> str | None:
    if not ctx.info.labelled:
        return "it needs labelled data"
    if "modes" in ctx.info.extra and not ctx.info.is_image:
        return None
    return why_no_classifier(ctx)


def class_histogram_scores(predicted: torch.Tensor, num_classes: int) -> dict[str, float | int]:
    """Classes predicted at least once, and KL(histogram ‖ uniform) in nats (0 for a perfectly even spread)."""
    counts = torch.bincount(predicted, minlength=num_classes)[:num_classes].double()
    p = counts[counts > 0] / counts.sum()
    return {"classes": int((counts > 0).sum()), "class_kl": float((p * (p * num_classes).log()).sum())}


class _ClassMetric(Metric):
    def why_not(self, ctx: EvalContext) -> str | None:
        if "modes" in ctx.info.extra and not ctx.info.is_image:
            return "for 2-D mixtures the modes, hq and rkl metrics are the protocol"
        return why_no_classes(ctx)

    def compute(self, ctx: EvalContext) -> dict[str, float | int | None]:
        scores = ctx.memo("class_histogram",
                          lambda: class_histogram_scores(predicted_classes(ctx), ctx.info.num_classes))
        return {key: scores[key] for key in self.keys}


class ClassesCovered(_ClassMetric):
    """How many classes the classifier finds among the generated samples."""

    keys = ("classes",)


class ClassKL(_ClassMetric):
    """KL divergence of the generated class histogram to uniform (0 when every class is equally frequent)."""

    keys = ("class_kl",)


class ConditionalAccuracy(Metric):
    """Share of samples classified as the class they were generated for (conditional models)."""

    keys = ("cond_acc",)

    def why_not(self, ctx: EvalContext) -> str | None:
        if not ctx.conditional:
            return "the model is unconditional (it takes no class)"
        return why_no_classes(ctx)

    def compute(self, ctx: EvalContext) -> dict[str, float | int | None]:
        asked = ctx.fake()[1]
        if asked is None:
            return {"cond_acc": math.nan}
        return {"cond_acc": float((predicted_classes(ctx) == asked.cpu()).double().mean())}
