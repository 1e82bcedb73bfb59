"""Built-in conditioning schemes."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_conditionings(register):
    register("none", "gantoolkit.builtin.conditionings.onehot:Unconditional",
             summary="unconditional: labels, if any, are ignored")
    register("onehot", "gantoolkit.builtin.conditionings.onehot:OneHot",
             summary="one-hot vector joined to z (generator), one-hot planes joined to the input (discriminator)")
    register("embed", "gantoolkit.builtin.conditionings.learned:Embed",
             summary="learned class embedding joined to z (generator), projection discriminator (critic)")
    register("cbn", "gantoolkit.builtin.conditionings.learned:CBN",
             summary="conditional BatchNorm: per-class gain and bias in the generator, projection discriminator")
    register("acgan", "gantoolkit.builtin.conditionings.learned:ACGAN",
             summary="AC-GAN: learned embedding joined to z, auxiliary classifier's cross-entropy in both losses")
