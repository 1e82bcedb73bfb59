"""Built-in samplers: plain draws, discriminator rejection sampling, critic-gradient latent refinement."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_samplers(register):
    register("plain", "gantoolkit.builtin.samplers.samplers:Plain", summary="the generator's samples as they are")
    register("drs", "gantoolkit.builtin.samplers.samplers:Rejection",
             summary="discriminator rejection sampling (Azadi et al. 2019): the critic thins out unlikely samples")
    register("refine", "gantoolkit.builtin.samplers.samplers:Refinement",
             summary="critic-gradient latent refinement: each latent takes a few steps up the critic's logit")
