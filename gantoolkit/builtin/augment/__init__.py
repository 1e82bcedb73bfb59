"""Built-in augmentations of the critic's inputs (hookimpls only: no torch import here)."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_augmentations(register):
    register("none", "gantoolkit.builtin.augment.none:NoAugmentation",
             summary="nothing: the critic sees the batches as they are (the default)")
    register("diffaug", "gantoolkit.builtin.augment.diffaug:DiffAugment",
             summary="DiffAugment (Zhao et al. 2020): colour, translation by 1/8, cutout of 1/2, on every batch; "
                     "policy=color,translation,cutout")
    register("ada", "gantoolkit.builtin.augment.ada:ADA",
             summary="StyleGAN2-ADA's cheap subset (Karras et al. 2020): x-flip, 90-degree rotations, integer "
                     "translation, colour, each with probability p adapted towards E[sign D(real)] = target (0.6)")
