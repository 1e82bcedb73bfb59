"""Built-in controllers and their commands (hookimpls only: no torch import here)."""

from __future__ import annotations

from gantoolkit import hookimpl

PANEL = "Controllable generation"
_M = "gantoolkit.builtin.controllers"


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
