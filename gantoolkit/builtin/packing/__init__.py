"""PacGAN packing (hookimpls only: nothing here imports torch)."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_architectures(register):
    register("pac", "gantoolkit.builtin.packing.pac:Pac",
             summary="PacGAN: any architecture (base=NAME) whose critic judges `pack` samples at once")
