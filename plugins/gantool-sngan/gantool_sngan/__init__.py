"""gantool-sngan: SNGAN's parts for gantoolkit (Miyato et al. 2018; Miyato & Koyama 2018).

This module holds only hook implementations. Every factory is a "module:Class" string, so `gantool --help` and
`gantool list` never import torch on this plugin's account.
"""

from __future__ import annotations

from gantoolkit import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_architectures(register):
    register("resnet-sn", "gantool_sngan.resnet:ResNetSN",
             summary="SNGAN ResNet: BatchNorm upsampling generator, spectrally normalised residual critic")


@hookimpl
def register_losses(register):
    register("hinge", "gantool_sngan.hinge:Hinge",
             summary="hinge loss (Adam 2e-4 (0, 0.9), 5 critic steps), as in SNGAN and BigGAN")


@hookimpl
def register_conditionings(register):
    register("projection", "gantool_sngan.projection:Projection",
             summary="projection discriminator: one-hot vector joined to z, score + <embed(y), features>")


@hookimpl
def register_configs(register):
    register("sngan-digits",
             {"data": "digits", "image_size": 16, "arch": "resnet-sn", "loss": "hinge", "cond": "projection",
              "steps": 2000},
             summary="conditional SNGAN on the embedded digits at 16x16: resnet-sn + hinge + projection")


@hookimpl
def register_commands(register):
    register("sngan", "gantool_sngan.cli:app", summary="SNGAN diagnostics (spectral norms of a trained critic)")
