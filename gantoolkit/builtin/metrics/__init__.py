"""Built-in metrics and the `gantool evaluate` command (hookimpls only: nothing here imports torch)."""

from __future__ import annotations

from gantoolkit import hookimpl

_M = "gantoolkit.builtin.metrics"


@hookimpl
def register_metrics(register):
    register("fd", f"{_M}.fidelity:FrechetDistance",
             summary="Fréchet distance of feature Gaussians (FID without downloads: see --features)")
    register("kid", f"{_M}.fidelity:KernelDistance", summary="kernel distance: unbiased MMD², cubic kernel, subsets")
    register("precision", f"{_M}.fidelity:Precision", summary="share of samples inside the real manifold (k = 3)")
    register("recall", f"{_M}.fidelity:Recall", summary="share of real data inside the samples' manifold (k = 3)")
    register("density", f"{_M}.fidelity:Density", summary="real k = 5 balls per sample, over k (1 for a match)")
    register("coverage", f"{_M}.fidelity:Coverage", summary="share of real k = 5 balls holding a sample")
    register("modes", f"{_M}.mixture:ModesCaptured", summary="2-D mixtures: modes with a high-quality sample")
    register("hq", f"{_M}.mixture:HighQuality", summary="2-D mixtures: share of samples within 3 std of a mode")
    register("rkl", f"{_M}.mixture:ReverseKL", summary="2-D mixtures: KL(mode histogram ‖ uniform)")
    register("classes", f"{_M}.labels:ClassesCovered", summary="labelled images: classes found among the samples")
    register("class-kl", f"{_M}.labels:ClassKL", summary="labelled images: KL(class histogram ‖ uniform)")
    register("cond-acc", f"{_M}.labels:ConditionalAccuracy",
             summary="conditional models: share of samples classified as the class asked for")
    register("stacked-modes", f"{_M}.stacked:StackedModes",
             summary="stacked digits: modes (of 1,000) found by reading each channel's digit; real data's floor")
    register("stacked-kl", f"{_M}.stacked:StackedKL",
             summary="stacked digits: KL(mode histogram ‖ uniform), PacGAN's reverse KL; real data's floor")
    register("nn", f"{_M}.nearest:NearestTraining",
             summary="images: nearest training images of samples (PNG grid + distances), the memorisation check")


@hookimpl
def register_commands(register):
    register("evaluate", f"{_M}.command:evaluate", summary="Score a trained generator against its data.",
             panel="Using a model")
