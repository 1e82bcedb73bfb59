"""Datasets as tensors: what a data source returns, and how the trainer draws batches from it."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

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


@dataclass(frozen=True)
class DataRequest:
    """What the user asked for, passed to every data source's `load`."""

    argument: str | None = None
    image_size: int | None = None
    data_root: Path = Path("data")
    download: bool = False
    on_bad_image: str = "error"
    seed: int = 0


@dataclass
class Dataset:
    """A whole dataset in memory: uint8 N×C×H×W images or float32 N×D vectors, with optional int64 labels."""

    info: DataInfo
    data: torch.Tensor
    labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if len(self.data) == 0:
            raise ValueError("a dataset needs at least one example")
        if self.labels is not None and len(self.labels) != len(self.data):
            raise ValueError("labels and data differ in length")

    def __len__(self) -> int:
        return len(self.data)


class DataSource(ABC):
    """Base class of registered datasets: `load(request)` returns a `Dataset`."""

    @abstractmethod
    def load(self, request: DataRequest) -> Dataset:
        """Read (or make) the whole dataset; raise `DataError` with a fix when that is not possible."""


def to_model_space(batch: torch.Tensor, info: DataInfo) -> torch.Tensor:
    """uint8 images -> float in [-1, 1]; vectors unchanged."""
    if info.is_image:
        return batch.float().div_(127.5).sub_(1.0)
    return batch.float()


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Model-space images in [-1, 1] -> uint8 in [0, 255]."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class DeviceBatches:
    """Draws shuffled batches from a dataset kept on the device, with a resumable position.

    The order of epoch `e` depends only on (seed, e), so resuming at (epoch, position) continues the very same
    sequence of batches as an uninterrupted run. The last incomplete batch of each epoch is dropped.
    """

    def __init__(self, dataset: Dataset, batch_size: int, device: torch.device, seed: int) -> None:
        if batch_size > len(dataset):
            batch_size = len(dataset)
        self.info = dataset.info
        self.batch_size = batch_size
        self.device = device
        self.seed = seed
        self.data = dataset.data.to(device)
        self.labels = dataset.labels.to(device) if dataset.labels is not None else None
        self.epoch = 0
        self.position = 0
        self._order = self._permutation(0)

    @property
    def batches_per_epoch(self) -> int:
        return max(1, len(self.data) // self.batch_size)

    def _permutation(self, epoch: int) -> torch.Tensor:
        rng = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.data), generator=rng).to(self.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.position + self.batch_size > len(self.data):
            self.epoch += 1
            self.position = 0
            self._order = self._permutation(self.epoch)
        index = self._order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        x = to_model_space(self.data[index], self.info)
        y = self.labels[index] if self.labels is not None else None
        return x, y

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._order = self._permutation(self.epoch)


def grid_shape(n: int) -> tuple[int, int]:
    """Rows and columns of a near-square grid holding n images."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols
