"""Batches read from disk by DataLoader workers, for data larger than memory (the images of gantoolkit.data.cache).

StreamBatches draws exactly the batches DeviceBatches draws from the same data: the permutation of epoch e seeded by
(seed, e), each rank's shard of every batch, the last incomplete batch of an epoch dropped, and the same resumable
(epoch, position). Only where the examples come from differs: the permutation is drawn in the training process,
and the workers read the rows of each batch from the memory-mapped cache. Whether data streams is decided by its
decoded size against a memory budget (GANTOOL_DATA_MEMORY, or half the memory available), or by the data source's
`stream` option.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler
from torch.utils.data import Dataset as TorchDataset

from gantoolkit.data import Dataset, epoch_order, to_model_space, usable_batch_size
from gantoolkit.data.cache import CachedImages, human_bytes
from gantoolkit.errors import DataError
from gantoolkit.training.distributed import SINGLE, Processes, shard

#: the most decoded bytes of data held in memory, e.g. 512M or 8G (powers of 1024); more streams from disk
MEMORY_ENV = "GANTOOL_DATA_MEMORY"
#: without GANTOOL_DATA_MEMORY, decoded data may take this share of the memory available when it is loaded
MEMORY_SHARE = 0.5
#: --workers by default: this many, or fewer when the process may use fewer CPUs
DEFAULT_WORKERS = 4
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class Streamed:
    """Data read from disk while training: its images in the cache, and why it is not held in memory."""

    images: CachedImages
    reason: str


def parse_bytes(text: str) -> int:
    """'512M' -> 536870912; a plain number is bytes. DataError for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise DataError(f"{MEMORY_ENV} must be a number of bytes such as 512M or 8G, got {text!r}",
                        f"set {MEMORY_ENV} to e.g. 4G, or unset it")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def available_memory() -> int | None:
    """Bytes of memory available now (MemAvailable, within a cgroup's limit), or None when unknown."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return max(0, min(found))


def memory_budget() -> tuple[int | None, str]:
    """The most decoded bytes of data held in memory (None: no limit known), and where that figure comes from."""
    imposed = os.environ.get(MEMORY_ENV)
    if imposed is not None:
        budget = parse_bytes(imposed)
        return budget, f"the {human_bytes(budget)} {MEMORY_ENV} allows"
    available = available_memory()
    if available is None:
        return None, "no limit (the memory available is unknown)"
    return int(available * MEMORY_SHARE), f"half of the {human_bytes(available)} of memory available"


def stream_reason(nbytes: int, option: bool | None) -> str | None:
    """Why data of `nbytes` decoded is read from disk while training, or None when it is held in memory.
    `option` is the data source's `stream`: True streams, False never does, None decides by the budget."""
    if option is not None:
        return "--data-opt stream=true" if option else None
    budget, source = memory_budget()
    if budget is None or nbytes <= budget:
        return None
    return f"{human_bytes(nbytes)} decoded is more than {source}"


def default_workers() -> int:
    """DEFAULT_WORKERS, or the CPUs this process may use when fewer."""
    from gantoolkit.device import usable_cpus

    return max(1, min(DEFAULT_WORKERS, usable_cpus()))


class BatchOrder(Sampler[list[int]]):
    """This rank's indices of every batch from (epoch, position) on, without end: DeviceBatches' order."""

    def __init__(self, n: int, batch_size: int, seed: int, processes: Processes, epoch: int, position: int) -> None:
        self.n, self.batch_size, self.seed, self.processes = n, batch_size, seed, processes
        self.epoch, self.position = epoch, position

    def __iter__(self) -> Iterator[list[int]]:
        epoch, position = self.epoch, self.position
        order = epoch_order(self.seed, epoch, self.n)
        while True:
            if position + self.batch_size > self.n:
                epoch, position = epoch + 1, 0
                order = epoch_order(self.seed, epoch, self.n)
            yield shard(order[position : position + self.batch_size], self.processes).tolist()
            position += self.batch_size


class Rows(TorchDataset):
    """What a worker reads for one item of BatchOrder: the rows of a batch, and their labels."""

    def __init__(self, images: CachedImages, labels: torch.Tensor | None) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return self.images.count

    def __getitem__(self, index: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:  # type: ignore[override]
        x = torch.empty((len(index), *self.images.shape), dtype=torch.uint8)
        if torch.utils.data.get_worker_info() is not None:
            x.share_memory_()  # handed to the training process without another copy
        self.images.read(index, out=x.numpy())
        y = self.labels[torch.as_tensor(index)] if self.labels is not None else None
        return x, y


def _unchanged(batch: Any) -> Any:
    return batch


def _ignore_interrupts(worker_id: int) -> None:
    """Ctrl-C reaches the training process, which finishes its step and saves: the workers must not stop first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


#: batches between two returns of freed heap memory to the system (`release_freed_memory`)
RELEASE_EVERY = 16


def release_freed_memory() -> bool:
    """Give the heap's free pages back to the system (glibc's malloc_trim). glibc serves batch-sized buffers from its
    heap once it has freed an mmapped block of that size, and may keep what they free: a streamed epoch of 20,000
    images grew the training process by 175-350 MiB in 2 runs of 5 (benchmarks/data.py), so its memory depended on
    the data's size. (Keeping glibc's mmap threshold fixed instead slowed the DCGAN-64 step by a third.) False where
    there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return False
    trim(0)
    return True


class StreamBatches:
    """DeviceBatches' batches of a dataset whose images stay on disk (`Dataset.stream`), read by `workers` DataLoader
    processes (0: in this process). The loader starts at the first batch and again after `load_state_dict`."""

    def __init__(self, dataset: Dataset, batch_size: int, device: torch.device, seed: int,
                 processes: Processes = SINGLE, channels_last: bool = False, workers: int | None = None) -> None:
        if dataset.stream is None:
            raise ValueError("StreamBatches reads a dataset whose images are on disk (Dataset.stream)")
        self.info = dataset.info
        self.batch_size = usable_batch_size(len(dataset), batch_size, processes)
        self.processes, self.device, self.seed = processes, device, seed
        self.memory_format = torch.channels_last if channels_last and dataset.data.dim() == 4 else None
        self.data = dataset.data  # memory-mapped: only its length is read here
        self.stream = dataset.stream
        self.rows = Rows(dataset.stream.images, dataset.labels)
        dataset.stream.images.open()  # before the workers start: they read through this handle
        self.workers = default_workers() if workers is None else workers
        self.epoch = 0
        self.position = 0
        self._batches: Iterator[Any] | None = None
        self._drawn = 0  # batches drawn by this process, for release_freed_memory

    @property
    def batches_per_epoch(self) -> int:
        return max(1, len(self.data) // self.batch_size)

    def _loader(self) -> DataLoader:
        order = BatchOrder(len(self.data), self.batch_size, self.seed, self.processes, self.epoch, self.position)
        return DataLoader(self.rows, batch_size=None, sampler=order, num_workers=self.workers,
                          collate_fn=_unchanged, pin_memory=self.device.type == "cuda",
                          worker_init_fn=_ignore_interrupts if self.workers else None,
                          generator=torch.Generator().manual_seed(self.seed))  # leaves the global RNG alone

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._batches is None:
            self._batches = iter(self._loader())
        try:
            x, y = next(self._batches)
        except Exception as e:  # a worker that failed or was killed (out of memory), a cache file gone bad
            self.close()
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"reading a batch from the image cache {self.stream.images.directory} failed: {reason}",
                            "gantool cache clear removes a damaged entry; --workers 0 reads without worker "
                            "processes") from None
        if self.position + self.batch_size > len(self.data):
            self.epoch += 1
            self.position = 0
        self.position += self.batch_size
        self._drawn += 1
        if self._drawn % RELEASE_EVERY == 0:
            release_freed_memory()
        x = to_model_space(x.to(self.device, non_blocking=True), self.info)
        y = y.to(self.device, non_blocking=True) if y is not None else None
        if self.memory_format is not None:
            x = x.contiguous(memory_format=self.memory_format)
        return x, y

    def note(self) -> str:
        """The banner's line: what streams, from where, with how many workers, and why."""
        images = self.stream.images
        workers = f"{self.workers} DataLoader worker{'s' if self.workers != 1 else ''}" if self.workers else \
            "no worker processes (--workers 0)"
        return (f"note: streaming {images.count:,} images from the image cache {images.directory} with {workers} "
                f"({self.stream.reason})")

    def close(self) -> None:
        """Stop the workers (a later `next` starts them again at the current position)."""
        self._batches = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.close()
