"""Built-in controllers and their commands (hookimpls only: no torch import here)."""

from __future__ import annotations

from gantoolkit import hookimpl

PANEL = "Controllable generation"
_M = "gantoolkit.builtin.controllers"


@hookimpl
def register_controllers(register):
    register("infogan", f"{_M}.infogan:InfoGAN",
             summary="training + directions: InfoGAN codes joined to z, a Q head on the critic, lambda * MI term")
    register("ss-infogan", f"{_M}.infogan:SupervisedInfoGAN",
             summary="training + directions: InfoGAN with its categorical code tied to the labels (Q learns them)")
    register("matching", f"{_M}.matching:MatchingAware",
             summary="training: a matching-aware critic (GAN-CLS): real images under wrong labels rank below right")


@hookimpl
def register_direction_finders(register):
    register("infogan", f"{_M}.infogan:InfoGAN", summary="the codes of a generator trained with --controller infogan")
    register("ss-infogan", f"{_M}.infogan:SupervisedInfoGAN",
             summary="the codes of a generator trained with --controller ss-infogan")
    register("sefa", f"{_M}.finders:SeFa",
             summary="directions: closed-form factorization (SeFa) of the generator's first layer")
    register("pca", f"{_M}.finders:PCA",
             summary="directions: PCA of early activations over sampled latents, carried back to z (GANSpace)")
    register("classifier", f"{_M}.finders:ClassifierDirections",
             summary="directions: mean gradient of a classifier's log-probability of each class with respect to z")


@hookimpl
def register_commands(register):
    register("interpolate", f"{_M}.commands:interpolate", panel=PANEL,
             summary="Walk from one seed's latent to another's (lerp or slerp): PNG strip, GIF or .npz.",
             epilog="Example:\n\n  gantool interpolate runs/digits --from-seed 1 --to-seed 2 --frames 9 --slerp "
                    "--out walk.gif")
    register("arithmetic", f"{_M}.commands:arithmetic", panel=PANEL,
             summary="Vector arithmetic on the latents of seeds (brackets average seeds): each term, then the result.",
             epilog='Example:\n\n  gantool arithmetic runs/digits "[1,2,3] - [4,5,6] + [7,8,9]" --out sum.png')
    register("edit", f"{_M}.commands:edit", panel=PANEL,
             summary="Classifier-gradient editing: move only z towards a class; a penalty holds the other logits.",
             epilog="Example:\n\n  gantool edit runs/digits --classifier clf.safetensors --target 7 --n 8 --penalty 1 "
                    "--out sevens.png")
    register("classifier", f"{_M}.commands:classifier_app", panel=PANEL,
             summary="Train a classifier on a dataset's labels (timm backbones); inspect one.")
    register("directions", f"{_M}.commands:directions", panel=PANEL,
             summary="Find named directions in z-space (classifier, sefa, pca, infogan), tied to the checkpoint.",
             epilog="Examples:\n\n  gantool directions runs/digits --method sefa --num 5 --out sefa.safetensors\n\n"
                    "  gantool sample runs/digits --direction sefa.safetensors:sefa0 --alphas -3,3 --steps 7 "
                    "--out strip.png")
