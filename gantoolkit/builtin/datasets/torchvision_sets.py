"""MNIST and Fashion-MNIST through torchvision, read as whole uint8 tensors (no per-item transforms)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from gantoolkit.builtin.datasets.imaging import image_hw, resize_uint8
from gantoolkit.data import IMAGE, DataInfo, DataRequest, Dataset, DataSource
from gantoolkit.errors import DataError

DEFAULT_IMAGE_SIZE = 32
NATIVE_SIZE = 28
#: what torchvision's MNIST-style datasets check for under <root>/<ClassName>/raw/ (all four, for either split)
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class _MNISTLike(DataSource):
    """Shared loader; subclasses set the display name, the torchvision class name and the class names."""

    source = ""
    title = ""
    torchvision_name = ""

    def __init__(self, split: Literal["train", "test"] = "train") -> None:
        if split not in ("train", "test"):
            raise DataError(f"{self.source} split must be 'train' or 'test', got {split!r}",
                            "use split=train or split=test")
        self.split = split

    def class_names(self, torchvision_classes: list[str]) -> tuple[str, ...]:
        return tuple(torchvision_classes)

    def load(self, request: DataRequest) -> Dataset:
        from torchvision import datasets

        size = image_hw(request, DEFAULT_IMAGE_SIZE)
        root = Path(request.data_root).expanduser()
        raw = root / self.torchvision_name / "raw"
        missing = [name for name in RAW_FILES if not (raw / name).is_file()]
        if missing and not request.download:
            raise DataError(
                f"{self.title} files not found in {raw} (missing {', '.join(missing)})",
                f"pass --download to fetch them, or put the four idx files under {raw}/",
            )
        cls = getattr(datasets, self.torchvision_name)
        try:
            tv = cls(root=str(root), train=self.split == "train", download=request.download)
            data, targets = tv.data, tv.targets
        except Exception as e:  # torchvision raises RuntimeError, AssertionError, URLError, OSError...
            if missing:
                raise DataError(f"could not download {self.title} into {raw}: {_first_line(e)}",
                                f"check the network, or put the four idx files under {raw}/ yourself") from e
            raise DataError(f"{self.title} files in {raw} are unreadable or corrupt: {_first_line(e)}",
                            "delete them and pass --download to fetch them again") from e
        if (data.dtype != torch.uint8 or data.ndim != 3 or len(data) == 0 or len(targets) != len(data)
                or int(targets.min()) < 0 or int(targets.max()) > 9):
            raise DataError(f"{self.title} files in {raw} do not hold uint8 images with labels 0-9",
                            "delete them and pass --download to fetch them again")

        images = resize_uint8(data.unsqueeze(1).contiguous(), size)
        info = DataInfo(
            source=self.source,
            modality=IMAGE,
            shape=(1, *size),
            num_classes=10,
            class_names=self.class_names(list(cls.classes)),
            extra={"split": self.split, "native_size": NATIVE_SIZE},
        )
        return Dataset(info, images, targets.to(torch.int64))


class MNIST(_MNISTLike):
    """MNIST handwritten digits (60,000 train / 10,000 test), resized from 28x28 to `--image-size` (a
    side or HxW; default 32)."""

    source = "mnist"
    title = "MNIST"
    torchvision_name = "MNIST"

    def class_names(self, torchvision_classes: list[str]) -> tuple[str, ...]:
        return tuple(str(d) for d in range(10))


class FashionMNIST(_MNISTLike):
    """Fashion-MNIST clothing images (60,000 train / 10,000 test), resized to `--image-size` (a side or HxW;
    default 32)."""

    source = "fashion-mnist"
    title = "Fashion-MNIST"
    torchvision_name = "FashionMNIST"
