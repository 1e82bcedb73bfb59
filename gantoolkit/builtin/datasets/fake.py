"""`fake:CxHxW`: uniformly random uint8 images of a given shape, for benchmarks and smoke tests."""

from __future__ import annotations

import re

import torch

from gantoolkit.builtin.datasets.imaging import image_hw
from gantoolkit.data import IMAGE, DataInfo, DataRequest, Dataset, DataSource
from gantoolkit.errors import DataError

#: the images never depend on the run's seed
DATA_SEED = 0
#: refuse to allocate more than this many bytes of random images
MAX_BYTES = 4 * 1024**3
_SHAPE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*$")
_EXAMPLE = "use fake:CxHxW with C in 1-4, e.g. fake:3x64x64"


def parse_shape(argument: str | None) -> tuple[int, int, int]:
    """"3x64x64" -> (3, 64, 64); DataError for anything else."""
    match = _SHAPE.match(argument or "")
    if not match:
        raise DataError(f"fake needs a shape CxHxW, got {argument!r}" if argument else "fake needs a shape", _EXAMPLE)
    c, h, w = (int(g) for g in match.groups())
    if not 1 <= c <= 4:
        raise DataError(f"fake images need 1 to 4 channels, got {c}", _EXAMPLE)
    if h < 1 or w < 1:
        raise DataError(f"fake image height and width must be positive, got {h}x{w}", _EXAMPLE)
    return c, h, w


class RandomImages(DataSource):
    """`n` uniformly random uint8 images of shape C×H×W (a given `--image-size`, a side or HxW,
    overrides H and W); unlabelled."""

    argument_is_path = False  # a shape, never a file

    def __init__(self, n: int = 1024) -> None:
        if n < 1:
            raise DataError(f"fake n must be at least 1, got {n}", "use e.g. n=1024")
        self.n = n

    def load(self, request: DataRequest) -> Dataset:
        c, h, w = parse_shape(request.argument)
        source = f"fake:{c}x{h}x{w}"
        if request.image_hw() is not None:
            h, w = image_hw(request, h)
        if self.n * c * h * w > MAX_BYTES:
            raise DataError(f"{self.n} fake images of {c}x{h}x{w} would need {self.n * c * h * w / 1024**3:.1f} GiB",
                            "use a smaller shape or a smaller n")
        rng = torch.Generator().manual_seed(DATA_SEED)
        data = torch.randint(0, 256, (self.n, c, h, w), generator=rng, dtype=torch.uint8)
        info = DataInfo(source=source, modality=IMAGE, shape=(c, h, w))
        return Dataset(info, data)
