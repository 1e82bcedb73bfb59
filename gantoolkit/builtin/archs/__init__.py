"""Built-in architectures: the course's vanilla MLP GAN, DCGAN and R3GAN's modern ResNet."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_architectures(register):
    register("mlp", "gantoolkit.builtin.archs.mlp:MLP",
             summary="the course's vanilla GAN: Linear-BatchNorm-ReLU generator, Linear-LeakyReLU critic")
    register("dcgan", "gantoolkit.builtin.archs.dcgan:DCGAN",
             summary="DCGAN (pytorch/examples at 64x64) for any power-of-two image size from 8 up")
    register("r3gan", "gantoolkit.builtin.archs.r3gan:R3GAN",
             summary="R3GAN's normalisation-free ResNet (grouped inverted bottlenecks, fix-up init, bilinear "
                     "resampling) for any power-of-two image size from 8 up")
