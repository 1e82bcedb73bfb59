"""Choosing the device and the mixed-precision mode."""

from __future__ import annotations

import contextlib
import os
from typing import Any

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
    """bf16 autocast on CUDA devices that support it (on by default there), fp16 (with a loss scaler, see
    `grad_scaler`) on older GPUs when asked for; on the CPU bf16 only when asked for (`--amp`); None: full precision."""
    if requested is False or device.type not in ("cuda", "cpu"):
        return None
    if device.type == "cpu":
        return torch.bfloat16 if requested else None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16 if requested else None


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler | None:
    """A loss scaler for fp16 (whose range is too small for gradients); bf16 and fp32 need none."""
    return torch.amp.GradScaler(device.type) if dtype == torch.float16 else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward passes (nothing when `dtype` is None). Under fp16 a penalty's gradients are
    loss-scaled by `PenaltyContext.gradients`, which holds the critic update's scaler."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def configure(device: torch.device) -> None:
    """Process-wide speed settings for `device`: cuDNN autotuning on CUDA (fixed shapes make it pay off)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


#: on this many usable CPUs or fewer, a run without `--threads` uses one thread (benchmarks/threads.py: on a 2-CPU
#: machine one thread was the fastest setting under every load measured and within 1.4x of the fastest when idle)
ONE_THREAD_UP_TO_CPUS = 2


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system says, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_threads(requested: int | None) -> int:
    """The CPU threads of this process's operators: `--threads`; else one on a machine of 2 CPUs or fewer unless
    OMP_NUM_THREADS says otherwise; else torch's own choice. Returns the count."""
    if requested is None and "OMP_NUM_THREADS" not in os.environ and usable_cpus() <= ONE_THREAD_UP_TO_CPUS:
        requested = 1
    if requested is not None:
        torch.set_num_threads(requested)
    return torch.get_num_threads()


def channels_last(device: torch.device, image: bool) -> bool:
    """Whether image models and batches use the channels-last layout (on CUDA, where convolutions prefer it)."""
    return image and device.type == "cuda"


def compile_models(generator: torch.nn.Module, critic: Any) -> tuple[Any, Any]:
    """`torch.compile`d forwards for the training step: the generator, and the critic's `score_and_features`.

    The modules themselves stay uncompiled, so their state_dict keys (and checkpoints) do not change, and the
    gradient penalty, whose double backward compiled graphs do not support, calls the eager critic."""
    return torch.compile(generator), torch.compile(critic.score_and_features)
