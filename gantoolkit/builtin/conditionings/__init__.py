"""Built-in conditioning schemes."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_conditionings(register):
    register("none", "gantoolkit.builtin.conditionings.onehot:Unconditional",
             summary="unconditional: labels, if any, are ignored")
    register("onehot", "gantoolkit.builtin.conditionings.onehot:OneHot",
             summary="one-hot vector joined to z (generator), one-hot planes joined to the input (discriminator)")
