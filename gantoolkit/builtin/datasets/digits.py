"""scikit-learn's bundled `load_digits`: real data that ships in a package, so nothing is downloaded."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from gantoolkit.data import IMAGE, DataInfo, DataRequest, Dataset, DataSource
from gantoolkit.errors import DataError

#: the loader's size when none is asked for (what runs saved before `recommend` existed were trained at)
DEFAULT_IMAGE_SIZE = 32
#: the size and widths a new run gets (`recommend`): the digits are 8x8, and at 16x16 a DCGAN of width 32 learns
#: them in a few CPU-minutes (benchmarks/digits.py --first-run; the README's quick start)
RECOMMENDED_SIZE = 16
RECOMMENDED_WIDTHS = {"dcgan": {"ngf": 32, "ndf": 32}}
#: conditioning options a new run gets: the one-hot scheme's matching-aware critic term (real digits under a wrong
#: label rank below their own), which lifted the first run's worst digit from 93-95 % to 97-99 % in 3 seeds
#: (benchmarks/digits.py --first-run; the README's quick start)
RECOMMENDED_CONDITIONING = {"onehot": {"match": 1.0}}
#: each built-in loss's schedule on the digits at that size, chosen by judged quality per CPU-minute
#: (benchmarks/digits.py --curves and --first-run; the README's "Defaults that fit the data")
SCHEDULES: dict[str, dict] = {
    "wgan-gp": {"steps": 5000, "n_critic": 2, "lr": 2e-4, "ema": 0.99, "lr_decay": 0.5,
                "loss": {"name": "wgan-gp", "lazy_every": 4}},
    "bce": {"steps": 3000, "ema": 0.99, "lr_decay": 0.5, "loss": {"name": "bce", "r1": 1.0}},
    "wgan": {"steps": 3000, "n_critic": 2, "lr": 2e-4, "ema": 0.99},
}


def resize_digits(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Float images in [0, 1] (N×1×h×w) -> uint8 N×1×H×W at `size`, a side or (height, width) (bilinear,
    antialiased when shrinking)."""
    hw = (size, size) if isinstance(size, int) else (size[0], size[1])
    if tuple(images.shape[-2:]) != hw:
        images = F.interpolate(images, size=hw, mode="bilinear", align_corners=False, antialias=True)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


class Digits(DataSource):
    """1,797 grayscale 8×8 digits in 10 classes, upsampled to `--image-size` (a side or HxW; a new run: 16).

    `per_class`: only N digits of each class, for small-data experiments (`--data-opt per_class=18` is 10% of the
    digits: 180 images): the first N in the bundle's order, or with `subset_seed` N drawn at random with that seed
    (the bundle's first digits come from few writers, so the first 180 are not a fair sample of the 1,797)."""

    def __init__(self, per_class: int | None = None, subset_seed: int | None = None) -> None:
        if per_class is not None and per_class < 1:
            raise DataError(f"digits per_class must be at least 1, got {per_class}",
                            "use e.g. per_class=18 (10% of the digits), or leave it out to take all 1,797")
        if subset_seed is not None and per_class is None:
            raise DataError("digits subset_seed chooses which per_class digits are taken, but no per_class is given",
                            "add --data-opt per_class=N, or leave subset_seed out")
        self.per_class = per_class
        self.subset_seed = subset_seed

    def subset(self, labels: torch.Tensor) -> torch.Tensor:
        """The indices kept by `per_class` (and `subset_seed`), in the bundle's order."""
        assert self.per_class is not None
        rng = torch.Generator().manual_seed(self.subset_seed) if self.subset_seed is not None else None
        kept = []
        for c in range(10):
            of_class = torch.nonzero(labels == c).flatten()
            if rng is not None:
                of_class = of_class[torch.randperm(len(of_class), generator=rng)]
            kept.append(of_class[: self.per_class])
        return torch.cat(kept).sort().values

    def recommend(self, config: Any) -> dict[str, Any]:
        """16×16, DCGAN widths of 32, the one-hot scheme's matching term and the measured schedule of the chosen
        loss (flags override each)."""
        advice: dict[str, Any] = {"image_size": RECOMMENDED_SIZE, **SCHEDULES.get(config.loss.name, {})}
        widths = RECOMMENDED_WIDTHS.get(config.arch.name)
        if widths:
            advice["arch"] = {"name": config.arch.name, **widths}
        conditioning = RECOMMENDED_CONDITIONING.get(config.cond.name)
        if conditioning:
            advice["cond"] = {"name": config.cond.name, **conditioning}
        return advice

    def load(self, request: DataRequest) -> Dataset:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        size = request.image_hw() or (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)
        images = torch.from_numpy(bunch.images).float().div(16.0).unsqueeze(1)
        labels = torch.from_numpy(bunch.target).long()
        if self.per_class is not None:
            images, labels = images[self.subset(labels)], labels[self.subset(labels)]
        data = resize_digits(images, size)
        info = DataInfo(
            source="digits",
            modality=IMAGE,
            shape=(1, *size),
            num_classes=10,
            class_names=tuple(str(d) for d in range(10)),
            extra={"native_size": 8},
        )
        return Dataset(info, data, labels)
