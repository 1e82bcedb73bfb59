"""CIFAR-10 from the *binary* release (`cifar-10-batches-bin/`): plain bytes, so nothing is ever unpickled."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from gantoolkit.builtin.datasets.imaging import image_hw, resize_uint8
from gantoolkit.data import IMAGE, DataInfo, DataRequest, Dataset, DataSource
from gantoolkit.errors import DataError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
FOLDER = "cifar-10-batches-bin"
SPLIT_FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
RECORD = 1 + 3 * 32 * 32  # one label byte, then 1024 R, 1024 G, 1024 B bytes (row-major 32x32)
DEFAULT_IMAGE_SIZE = 32
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _download(root: Path) -> None:
    from torchvision.datasets import utils

    try:
        root.mkdir(parents=True, exist_ok=True)
        utils.download_and_extract_archive(URL, download_root=str(root), md5=MD5)
    except Exception as e:  # URLError, RuntimeError (bad checksum), OSError (disk), tarfile errors...
        text = str(e).strip().splitlines()
        raise DataError(f"could not download CIFAR-10 into {root}: {text[0] if text else type(e).__name__}",
                        f"check the network, or extract cifar-10-binary.tar.gz ({URL}) under {root}/") from e


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch file -> (uint8 N×3×32×32 images, int64 labels); DataError if truncated or corrupt."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read CIFAR-10 file {path}: {e.strerror or e}", "check the file's permissions") from e
    if not raw or len(raw) % RECORD:
        raise DataError(f"CIFAR-10 file {path} is truncated or corrupt ({len(raw)} bytes, not a multiple of {RECORD})",
                        "delete it and pass --download to fetch it again")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DataError(f"CIFAR-10 file {path} is corrupt (label {labels.max()} is not in 0-9)",
                        "delete it and pass --download to fetch it again")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def read_class_names(folder: Path) -> tuple[str, ...]:
    """Class names from `batches.meta.txt`; the standard ten when that file is absent or odd."""
    meta = folder / "batches.meta.txt"
    if meta.is_file():
        names = [line.strip() for line in meta.read_text(encoding="utf-8", errors="replace").splitlines()]
        names = [n for n in names if n]
        if len(names) == len(CLASS_NAMES):
            return tuple(names)
    return CLASS_NAMES


class CIFAR10(DataSource):
    """CIFAR-10: 50,000 train / 10,000 test 32x32 colour images in 10 classes, from `<data-root>/cifar-10-batches-bin`.

    Default size 32; another `--image-size` (a side, or HxW) resizes (bilinear, antialiased).
    """

    def __init__(self, split: Literal["train", "test"] = "train") -> None:
        if split not in SPLIT_FILES:
            raise DataError(f"cifar10 split must be 'train' or 'test', got {split!r}", "use split=train or split=test")
        self.split = split

    def load(self, request: DataRequest) -> Dataset:
        size = image_hw(request, DEFAULT_IMAGE_SIZE)
        root = Path(request.data_root).expanduser()
        folder = root / FOLDER
        names = SPLIT_FILES[self.split]
        missing = [n for n in names if not (folder / n).is_file()]
        if missing and request.download:
            _download(root)
            missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            pickled = ""
            if (root / "cifar-10-batches-py").is_dir():
                pickled = " (the pickled python release next to it is never read)"
            raise DataError(
                f"CIFAR-10 binary files not found in {folder} (missing {', '.join(missing)}){pickled}",
                f"pass --download to fetch them, or extract cifar-10-binary.tar.gz under {root}/",
            )
        batches = [read_batch(folder / n) for n in names]
        images = torch.from_numpy(np.concatenate([b[0] for b in batches]))
        labels = torch.from_numpy(np.concatenate([b[1] for b in batches]))
        info = DataInfo(
            source="cifar10",
            modality=IMAGE,
            shape=(3, *size),
            num_classes=10,
            class_names=read_class_names(folder),
            extra={"split": self.split, "native_size": 32},
        )
        return Dataset(info, resize_uint8(images, size), labels)
