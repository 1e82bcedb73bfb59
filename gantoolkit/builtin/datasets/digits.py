"""scikit-learn's bundled `load_digits`: real data that ships in a package, so nothing is downloaded."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gantoolkit.data import IMAGE, DataInfo, DataRequest, Dataset, DataSource

#: the digits are 8x8; the model size upsamples them so that conv nets have room to work. At 16x16 a DCGAN has
#: two layers a side and its conditional samples are read as the class asked for ~96% of the time; at 32x32
#: (three a side) ~98% (benchmarks/digits.py), so 32 is the default.
DEFAULT_IMAGE_SIZE = 32


def resize_digits(images: torch.Tensor, size: int) -> torch.Tensor:
    """Float images in [0, 1] (N×1×h×w) -> uint8 N×1×size×size (bilinear, antialiased when shrinking)."""
    if images.shape[-1] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


class Digits(DataSource):
    """1,797 grayscale 8×8 digits in 10 classes, upsampled to `--image-size` (default 32)."""

    def load(self, request: DataRequest) -> Dataset:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        size = request.image_size or DEFAULT_IMAGE_SIZE
        images = torch.from_numpy(bunch.images).float().div(16.0).unsqueeze(1)
        data = resize_digits(images, size)
        labels = torch.from_numpy(bunch.target).long()
        info = DataInfo(
            source="digits",
            modality=IMAGE,
            shape=(1, size, size),
            num_classes=10,
            class_names=tuple(str(d) for d in range(10)),
            extra={"native_size": 8},
        )
        return Dataset(info, data, labels)
