"""Built-in architectures: the course's vanilla MLP GAN and DCGAN."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_architectures(register):
    register("mlp", "gantoolkit.builtin.archs.mlp:MLP",
             summary="the course's vanilla GAN: Linear-BatchNorm-ReLU generator, Linear-LeakyReLU critic")
    register("dcgan", "gantoolkit.builtin.archs.dcgan:DCGAN",
             summary="DCGAN (pytorch/examples at 64x64) for any power-of-two image size from 8 up")
