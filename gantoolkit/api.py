"""The Python API for notebooks and scripts: `gantoolkit.load_generator(...)` and `gantoolkit.train(...)`.

A thin, typed layer over the code the commands use (`sampling.LoadedGenerator`, `controllers`, `training`), so a
seed gives exactly the samples `gantool sample --seed` writes. Images come back as uint8 tensors N×C×H×W, vector
data as float32 points N×D.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gantoolkit.data import to_uint8
from gantoolkit.errors import ConfigError
from gantoolkit.sampling.generator import LoadedGenerator
from gantoolkit.sampling.generator import load_generator as _load

if TYPE_CHECKING:
    from PIL.Image import Image

    from gantoolkit.config import RunConfig
    from gantoolkit.controllers.directions import Directions

ClassSpec = int | str | Sequence[int | str] | None


class GeneratorModel:
    """A trained generator to drive from Python. `loaded` is the `LoadedGenerator` underneath."""

    def __init__(self, loaded: LoadedGenerator) -> None:
        self.loaded = loaded

    def __repr__(self) -> str:
        data = self.loaded.data
        classes = f", {data.num_classes} classes" if self.conditional else ""
        return (f"GeneratorModel({self.loaded.checkpoint.path}, step {self.loaded.checkpoint.step}, "
                f"{data.modality} {'x'.join(map(str, data.shape))}, latent {self.latent_dim}{classes})")

    @property
    def latent_dim(self) -> int:
        return self.loaded.latent_dim

    @property
    def conditional(self) -> bool:
        return self.loaded.conditional

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names (empty for an unconditional generator)."""
        return self.loaded.class_names if self.conditional else ()

    @property
    def shape(self) -> tuple[int, ...]:
        """One sample's shape: (C, H, W) for images, (D,) for vectors."""
        return tuple(self.loaded.data.shape)

    def latents(self, n: int, seed: int = 0, truncation: float | None = None) -> torch.Tensor:
        """n latents (float32 n×latent_dim) named by `seed`, the ones `sample(n, seed=seed)` draws."""
        return self.loaded.latents(n, seed, truncation)

    def labels(self, n: int, classes: ClassSpec = None) -> torch.Tensor | None:
        """Labels for n samples: one class for all, one per sample, or (None) every class in turn."""
        if classes is None or isinstance(classes, (int, str)):
            index = None if classes is None else self.loaded.class_index(classes)
            return self.loaded.labels(n, index)
        indices = [self.loaded.class_index(c) for c in classes]
        if len(indices) != n:
            raise ConfigError(f"classes names {len(indices)} classes for {n} samples", "give one per sample, or one")
        return torch.tensor(indices, dtype=torch.long)

    def sample(self, n: int = 64, classes: ClassSpec = None, seed: int = 0,
               truncation: float | None = None) -> torch.Tensor:
        """n samples for `seed`: uint8 images N×C×H×W (float points N×D for vector data). `classes` is a class
        (index or name) for all, one per sample, or None for every class in turn, as `gantool sample` does."""
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        z = self.latents(n, seed, truncation)
        return self.render(z, classes, codes=self.loaded.codes(n, seed))

    def render(self, z: torch.Tensor, classes: ClassSpec = None, codes: torch.Tensor | None = None) -> torch.Tensor:
        """The samples of latents `z` (n×latent_dim), as `sample` returns them; `codes` default to seed 0's."""
        z = self._check_latents(z)
        if codes is None:
            codes = self.loaded.codes(len(z), 0)
        return self._output(self.loaded.generate(z, self.labels(len(z), classes), codes))

    def interpolate(self, a: int | torch.Tensor, b: int | torch.Tensor, steps: int = 8,
                    spherical: bool = False) -> torch.Tensor:
        """`steps` latents from a to b inclusive (each a seed or a latent vector); draw them with `render`."""
        from gantoolkit.controllers.latent import interpolate

        return interpolate(self._latent(a), self._latent(b), steps, spherical)

    def edit(self, z: torch.Tensor, directions: str | Path | Directions, name: str,
             alpha: float | Sequence[float] = 3.0, classes: ClassSpec = None) -> torch.Tensor:
        """Samples of `z` moved along direction `name` of a `gantool directions` file (or `Directions`) by
        `alpha`; a list of alphas gives, for each latent, one sample per alpha (rows of len(alpha))."""
        from gantoolkit.controllers.directions import Directions, load_directions, moved_inputs

        z = self._check_latents(z)
        if isinstance(directions, Directions):
            directions.check_model(self.loaded)
        else:
            directions = load_directions(directions, self.loaded)
        alphas = [float(alpha)] if isinstance(alpha, (int, float)) else [float(a) for a in alpha]
        if not alphas:
            raise ConfigError("alpha needs at least one value")
        labels = self.labels(len(z), classes)
        moved_z, moved_codes, cols = moved_inputs(directions, name, z, self.loaded.codes(len(z), 0), alphas)
        labels = labels.repeat_interleave(cols, 0) if labels is not None else None
        return self._output(self.loaded.generate(moved_z, labels, moved_codes))

    def directions(self, method: str = "sefa", **options: Any) -> Directions:
        """Directions found in this generator by a registered finder (`gantool list finders`), for `edit`."""
        from gantoolkit.controllers.directions import create_finder, find_directions

        return find_directions(create_finder(method, options), self.loaded, method)

    def to_pil(self, images: torch.Tensor) -> list[Image]:
        """uint8 images N×C×H×W (or one C×H×W) as PIL images."""
        from PIL import Image

        batch = self._check_images(images)
        arrays = batch.permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(a[..., 0] if a.shape[2] == 1 else a) for a in arrays]

    def grid(self, images: torch.Tensor, nrow: int | None = None) -> Image:
        """uint8 images N×C×H×W as one PIL image, `nrow` images per row (default: a square)."""
        from gantoolkit.files.images import grid

        return self.to_pil(grid(self._check_images(images), nrow))[0]

    def _output(self, samples: torch.Tensor) -> torch.Tensor:
        return to_uint8(samples) if self.loaded.data.is_image else samples.float()

    def _latent(self, value: int | torch.Tensor) -> torch.Tensor:
        if isinstance(value, int):
            return self.latents(1, value)[0]
        vector = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
        if len(vector) != self.latent_dim:
            raise ConfigError(f"a latent of size {len(vector)}, but this generator's latent size is {self.latent_dim}")
        return vector

    def _check_latents(self, z: torch.Tensor) -> torch.Tensor:
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.dim() == 1:
            z = z[None]
        if z.dim() != 2 or z.shape[1] != self.latent_dim or len(z) < 1:
            raise ConfigError(f"latents of shape {list(z.shape)}, but this generator takes n×{self.latent_dim}")
        return z

    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        if not self.loaded.data.is_image:
            raise ConfigError("this generator makes vectors, not images", "plot the points instead")
        batch = images[None] if images.dim() == 3 else images
        if batch.dim() != 4 or batch.dtype != torch.uint8:
            raise ConfigError(f"expected uint8 images N×C×H×W, got {batch.dtype} {list(batch.shape)}",
                              "pass what sample() returns")
        return batch


def load_generator(path: str | Path, device: str = "cpu", ema: bool = True) -> GeneratorModel:
    """The generator of a run directory (its newest checkpoint), a checkpoint or an exported generator file."""
    return GeneratorModel(_load(path, device, prefer_ema=ema))


def train(config: Mapping[str, Any] | str | Path | RunConfig, out: str | Path | None = None,
          **settings: Any) -> Path:
    """Train a new run and return its directory. `config` is a table of settings (as in a TOML file:
    `{"arch": {"name": "dcgan", "ngf": 8}, "steps": 200}`), a TOML file, a preset name or a `RunConfig`;
    `settings` override it like command-line flags. Progress goes to stderr, as with `gantool train`."""
    from gantoolkit.config import RunConfig
    from gantoolkit.recommend import compose
    from gantoolkit.training.run import train as train_run

    if isinstance(config, RunConfig):
        if settings:
            raise ConfigError("settings cannot be added to a RunConfig", "set them on the RunConfig")
        cfg = config
    else:
        if isinstance(config, Mapping):
            layer = (dict(config), "train(config)")
        else:
            from gantoolkit.cli.train import config_layer

            layer = config_layer(str(config))
        cfg, _ = compose([layer, (settings, "train(...) settings")])
    return train_run(cfg, Path(out) if out is not None else None)
