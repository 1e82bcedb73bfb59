"""The DCGAN paper's weight initialisation, shared by the built-in architectures."""

from __future__ import annotations

from torch import nn


def dcgan_init(module: nn.Module) -> None:
    """Conv and linear weights ~ N(0, 0.02); BatchNorm weights ~ N(1, 0.02), biases 0 (pytorch/examples)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
