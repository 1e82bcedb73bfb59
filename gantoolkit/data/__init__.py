"""Datasets as tensors: what a data source returns, and how the trainer draws batches from it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gantoolkit.components import DataSource  # noqa: F401 - the contract, re-exported from its old path
from gantoolkit.errors import DataError
from gantoolkit.training.distributed import SINGLE, Processes, shard

if TYPE_CHECKING:
    from gantoolkit.data.streaming import StreamBatches, Streamed

IMAGE = "image"
VECTOR = "vector"


@dataclass(frozen=True)
class DataInfo:
    """Everything a model, a checkpoint and a metric need to know about the data.

    Images are stored as uint8 and reach the model in [-1, 1]; vectors are stored and used as float32.
    """

    source: str
    modality: str
    shape: tuple[int, ...]
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.num_classes > 0

    @property
    def is_image(self) -> bool:
        return self.modality == IMAGE

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["shape"] = list(self.shape)
        out["class_names"] = list(self.class_names)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DataInfo:
        return cls(
            source=str(raw["source"]),
            modality=str(raw["modality"]),
            shape=tuple(int(s) for s in raw["shape"]),
            num_classes=int(raw.get("num_classes", 0)),
            class_names=tuple(str(c) for c in raw.get("class_names", ())),
            extra=dict(raw.get("extra", {})),
        )


#: the most classes any data may have (ImageNet-21k has 21,841); a file claiming more is refused before allocating
MAX_CLASSES = 100_000
#: the most channels of an image, and the most entries of one example (a 16-channel 4096×4096 image)
MAX_CHANNELS = 16
MAX_EXAMPLE_SIZE = 16 * 4096 * 4096


def check_shape_bounds(info: DataInfo) -> None:
    """ValueError when a description (read from a file) claims more classes, channels or entries than any data has."""
    if not 0 <= info.num_classes <= MAX_CLASSES:
        raise ValueError(f"{info.num_classes:,} classes (at most {MAX_CLASSES:,})")
    if info.is_image and (len(info.shape) != 3 or info.shape[0] > MAX_CHANNELS):
        raise ValueError(f"images of shape {list(info.shape)} (C×H×W with at most {MAX_CHANNELS} channels)")
    if math.prod(info.shape) > MAX_EXAMPLE_SIZE:
        raise ValueError(f"examples of shape {list(info.shape)} ({math.prod(info.shape):,} entries, at most "
                         f"{MAX_EXAMPLE_SIZE:,})")


@dataclass(frozen=True)
class DataRequest:
    """What the user asked for, passed to every data source's `load`."""

    argument: str | None = None
    #: the side of the square images asked for (`--image-size 64`); None when none or a rectangle was asked for
    image_size: int | None = None
    data_root: Path = Path("data")
    download: bool = False
    on_bad_image: str = "error"
    seed: int = 0
    #: (height, width) asked for (`--image-size 64x32`, or the square one); a source that can resize reads this
    image_shape: tuple[int, int] | None = None

    def image_hw(self) -> tuple[int, int] | None:
        """(height, width) asked for: `image_shape`, else the square `image_size`, else None."""
        if self.image_shape is not None:
            return self.image_shape
        return None if self.image_size is None else (self.image_size, self.image_size)


@dataclass
class Dataset:
    """A whole dataset: uint8 N×C×H×W images or float32 N×D vectors, with optional int64 labels.

    `data` is in memory, unless `stream` says the images stay on disk (too large for memory, or asked for): `data`
    is then memory-mapped and training reads its batches with DataLoader workers (gantoolkit.data.streaming).
    """

    info: DataInfo
    data: torch.Tensor
    labels: torch.Tensor | None = None
    stream: Streamed | None = None

    def __post_init__(self) -> None:
        if len(self.data) == 0:
            raise ValueError("a dataset needs at least one example")
        if self.labels is not None and len(self.labels) != len(self.data):
            raise ValueError("labels and data differ in length")

    def __len__(self) -> int:
        return len(self.data)


def to_model_space(batch: torch.Tensor, info: DataInfo) -> torch.Tensor:
    """uint8 images -> float in [-1, 1]; vectors unchanged."""
    if info.is_image:
        return batch.float().div_(127.5).sub_(1.0)
    return batch.float()


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Model-space images in [-1, 1] -> uint8 in [0, 255]."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


#: a dataset larger than this share of a GPU's memory stays in host memory (each batch is copied over, pinned)
DEVICE_SHARE = 0.25


def fits_on_device(data: torch.Tensor, device: torch.device) -> bool:
    """Whether a whole dataset may live on `device` (always, except a large one on a GPU)."""
    if device.type != "cuda":
        return True
    return data.numel() * data.element_size() <= DEVICE_SHARE * torch.cuda.get_device_properties(device).total_memory


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order of the n examples in epoch `epoch`: a permutation that depends only on (seed, epoch)."""
    rng = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=rng)


def usable_batch_size(n: int, batch_size: int, processes: Processes) -> int:
    """The global batch drawn from n examples: `batch_size`, or all of them (split evenly) when that is more."""
    if batch_size > n:
        batch_size = n - n % processes.world_size
    if batch_size < processes.world_size:
        raise DataError(f"{n} examples cannot be shared among {processes.world_size} processes")
    return batch_size


def batches_for(dataset: Dataset, batch_size: int, device: torch.device, seed: int, processes: Processes = SINGLE,
                channels_last: bool = False, workers: int | None = None) -> DeviceBatches | StreamBatches:
    """The batches of a training run: DeviceBatches for data in memory, StreamBatches (read by `workers` DataLoader
    processes) for data whose images stay on disk. Both draw the same batches in the same order."""
    if dataset.stream is None:
        return DeviceBatches(dataset, batch_size, device, seed, processes, channels_last)
    from gantoolkit.data.streaming import StreamBatches

    return StreamBatches(dataset, batch_size, device, seed, processes, channels_last, workers)


class DeviceBatches:
    """Draws shuffled batches from a dataset kept on the device, with a resumable position.

    The order of epoch `e` depends only on (seed, e), so resuming at (epoch, position) continues the very same
    sequence of batches as an uninterrupted run. The last incomplete batch of each epoch is dropped. A dataset too
    large for the GPU (see DEVICE_SHARE) stays in host memory and each batch is copied asynchronously.
    """

    def __init__(self, dataset: Dataset, batch_size: int, device: torch.device, seed: int,
                 processes: Processes = SINGLE, channels_last: bool = False) -> None:
        batch_size = usable_batch_size(len(dataset), batch_size, processes)
        self.info = dataset.info
        self.batch_size = batch_size  # the global batch: each process takes its shard (training.distributed)
        self.processes = processes
        self.memory_format = torch.channels_last if channels_last and dataset.data.dim() == 4 else None
        self.device = device
        self.seed = seed
        self.storage = device if fits_on_device(dataset.data, device) else torch.device("cpu")
        self.data = dataset.data.to(self.storage)
        self.labels = dataset.labels.to(self.storage) if dataset.labels is not None else None
        self.epoch = 0
        self.position = 0
        self._order = self._permutation(0)

    @property
    def batches_per_epoch(self) -> int:
        return max(1, len(self.data) // self.batch_size)

    def _permutation(self, epoch: int) -> torch.Tensor:
        return epoch_order(self.seed, epoch, len(self.data)).to(self.storage)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.position + self.batch_size > len(self.data):
            self.epoch += 1
            self.position = 0
            self._order = self._permutation(self.epoch)
        index = shard(self._order[self.position : self.position + self.batch_size], self.processes)
        self.position += self.batch_size
        x, y = self.data[index], self.labels[index] if self.labels is not None else None
        if self.storage != self.device:  # pinned, so the copy does not wait for the GPU
            x = x.pin_memory().to(self.device, non_blocking=True)
            y = y.pin_memory().to(self.device, non_blocking=True) if y is not None else None
        x = to_model_space(x, self.info)
        if self.memory_format is not None:
            x = x.contiguous(memory_format=self.memory_format)
        return x, y

    def close(self) -> None:
        """Nothing to release (StreamBatches stops its workers here)."""

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._order = self._permutation(self.epoch)

