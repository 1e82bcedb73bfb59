"""Choosing the device and the mixed-precision mode."""

from __future__ import annotations

import contextlib

import torch

from gantoolkit.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then MPS, then the CPU; anything else must be a device torch knows and can use."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}", "use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available here", "use --device auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' asked for, but MPS is not available here", "use --device auto or cpu")
    return device


def amp_dtype(device: torch.device, requested: bool | None) -> torch.dtype | None:
    """bf16 autocast on CUDA devices that support it (on by default there); None means full precision."""
    if device.type != "cuda" or requested is False:
        return None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16 if requested else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
