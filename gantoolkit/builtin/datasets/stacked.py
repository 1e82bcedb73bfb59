"""Stacked digits: the StackedMNIST mode-collapse protocol (VEEGAN, PacGAN, R3GAN) on scikit-learn's digits.

Each image has 3 channels, each an independently drawn digit image (uniformly from the 1,797), so there are
10^3 = 1,000 modes: the 3-digit number whose hundreds are the first channel's digit, tens the second's, units the
third's. The `stacked-modes` and `stacked-kl` metrics count them in generated samples.
"""

from __future__ import annotations

from typing import Any

import torch

from gantoolkit.builtin.datasets.digits import RECOMMENDED_SIZE, Digits
from gantoolkit.data import IMAGE, DataInfo, DataRequest, Dataset, DataSource
from gantoolkit.errors import DataError

#: channels, so modes = 10 ** CHANNELS
CHANNELS = 3
MODES = 10**CHANNELS
#: the protocol's number of generated samples (PacGAN, VEEGAN): `gantool evaluate`'s default --n on this data
EVAL_SAMPLES = 26_000
#: the most stacked images one may ask for (n=...)
MAX_IMAGES = 200_000


def digits_at(size: int) -> Dataset:
    """The `digits` dataset at size x size: what each channel is drawn from, and what its classifier learns."""
    return Digits().load(DataRequest(image_size=size))


def stack(images: torch.Tensor, labels: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n images whose channels are independently drawn `images` (N x 1 x H x W), and their 3-digit labels."""
    picks = torch.randint(len(images), (n, CHANNELS), generator=torch.Generator().manual_seed(seed))
    data = images[picks.flatten()].view(n, CHANNELS, *images.shape[2:])
    place = torch.tensor([10 ** (CHANNELS - 1 - c) for c in range(CHANNELS)])
    return data, (labels[picks] * place).sum(1)


class StackedDigits(DataSource):
    """`n` 3-channel images, each channel a digit drawn independently and uniformly (seeded by `seed`), at
    `--image-size` (default 16, the digits' recommended size). With `labels` (default) the 1,000 modes are the
    classes "000".."999"; labels=false makes the data unlabelled."""

    argument_is_path = False

    def __init__(self, n: int = 26_000, seed: int = 0, labels: bool = True) -> None:
        if not 1 <= n <= MAX_IMAGES:
            raise DataError(f"stacked-digits n must be in 1..{MAX_IMAGES:,}, got {n:,}", "use e.g. n=26000")
        self.n, self.seed, self.labels = n, seed, labels

    def recommend(self, config: Any) -> dict[str, Any]:
        """The digits' recommended size (16x16), where their classifier reads each channel."""
        return {"image_size": RECOMMENDED_SIZE}

    def load(self, request: DataRequest) -> Dataset:
        size = request.image_size or RECOMMENDED_SIZE
        digits = digits_at(size)
        assert digits.labels is not None  # the digits are labelled
        data, modes = stack(digits.data, digits.labels, self.n, self.seed)
        info = DataInfo(
            source="stacked-digits",
            modality=IMAGE,
            shape=(CHANNELS, size, size),
            num_classes=MODES if self.labels else 0,
            class_names=tuple(f"{m:03d}" for m in range(MODES)) if self.labels else (),
            extra={"native_size": 8, "stacked": {"of": "digits", "channels": CHANNELS, "modes": MODES},
                   "eval_samples": EVAL_SAMPLES},
        )
        return Dataset(info, data, modes if self.labels else None)
