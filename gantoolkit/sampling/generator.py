"""Checkpoint -> generator -> samples. Shared by the CLI, the demo, the controllers and the metrics.

Latents are always drawn on the CPU from a generator seeded with the user's seed, so a seed names the same
samples on every device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gantoolkit.batching import in_chunks
from gantoolkit.data import DataInfo
from gantoolkit.device import resolve_device
from gantoolkit.errors import CheckpointError, ConfigError, GanToolkitError
from gantoolkit.files.checkpoint import Checkpoint, build_error, load_checkpoint
from gantoolkit.files.runs import resolve_checkpoint
from gantoolkit.models import GanModels, Generator, build_models
from gantoolkit.registry import get_registry
from gantoolkit.training.sizing import build_within_memory

MAX_SEED = 2**63 - 1


@dataclass
class LoadedGenerator:
    """A trained generator in eval mode, with what it needs to be driven: latent size, classes, codes."""

    checkpoint: Checkpoint
    models: GanModels
    generator: Generator
    device: torch.device

    @property
    def data(self) -> DataInfo:
        return self.checkpoint.data

    @property
    def latent_dim(self) -> int:
        return self.models.config.latent_dim

    @property
    def conditional(self) -> bool:
        return self.models.conditioning.requires_labels and self.data.num_classes > 0

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.data.class_names or tuple(str(i) for i in range(self.data.num_classes))

    def class_index(self, value: str | int) -> int:
        """A class given by index or by name, checked."""
        if not self.conditional:
            raise ConfigError("this generator is unconditional; it takes no class", "drop --class")
        names = self.class_names
        text = str(value).strip()
        if text in names:
            return names.index(text)
        try:
            index = int(text)
        except ValueError:
            choices = f"choose a name ({', '.join(names[:10])}) or 0..{len(names) - 1}"
            raise ConfigError(f"unknown class {text!r}", choices) from None
        if not 0 <= index < len(names):
            raise ConfigError(f"class {index} is out of range", f"this model has classes 0..{len(names) - 1}")
        return index

    def latents(self, n: int, seed: int = 0, truncation: float | None = None) -> torch.Tensor:
        """n latents from N(0, I); with `truncation`, entries beyond ±truncation are drawn again."""
        check_seed(seed)
        if truncation is not None and not truncation > 0:
            raise ConfigError(f"--truncation must be positive, got {truncation}")
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=rng)
        if truncation is not None:
            outside = z.abs() > truncation
            for _ in range(TRUNCATION_ROUNDS):
                if not outside.any():
                    break
                z[outside] = torch.randn(int(outside.sum()), generator=rng)
                outside = z.abs() > truncation
            if outside.any():  # a truncation so small that redrawing would take (almost) forever
                z[outside] = truncated_normal(int(outside.sum()), truncation, rng)
        return z

    def labels(self, n: int, class_index: int | None = None) -> torch.Tensor | None:
        """The class asked for, or the classes spread evenly (0, 1, …, K−1, 0, …); None when unconditional."""
        if not self.conditional:
            return None
        if class_index is not None:
            return torch.full((n,), class_index, dtype=torch.long)
        return torch.arange(n) % self.data.num_classes

    def codes(self, n: int, seed: int = 0) -> torch.Tensor | None:
        return self.models.sample_codes(n, torch.Generator().manual_seed(seed + 1), torch.device("cpu"))

    @torch.no_grad()
    def generate(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, codes: torch.Tensor | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """Model-space samples on the CPU (images in [-1, 1], or vectors)."""
        if self.conditional and labels is None:
            labels = self.labels(len(z))
        return in_chunks(lambda *part: self.generator(*part).float(), (z, labels, codes), batch_size, self.device)

    def sample(
        self, n: int, seed: int = 0, class_index: int | None = None, truncation: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if n < 1:
            raise ConfigError(f"--n must be at least 1, got {n}")
        labels = self.labels(n, class_index)
        return self.generate(self.latents(n, seed, truncation), labels, self.codes(n, seed)), labels


#: rounds of redrawing the latent entries beyond ±truncation; what is still outside then (only with a truncation far
#: below 1, where each draw lands inside with probability about 0.8 · truncation) is drawn from the truncated normal
TRUNCATION_ROUNDS = 64


def truncated_normal(n: int, bound: float, rng: torch.Generator) -> torch.Tensor:
    """n draws from N(0, 1) restricted to [-bound, bound], by inverting the normal CDF (no loop, any bound > 0)."""
    low = torch.special.ndtr(torch.tensor(-bound, dtype=torch.float64))
    u = low + torch.rand(n, generator=rng, dtype=torch.float64) * (1 - 2 * low)
    return torch.special.ndtri(u).clamp(-bound, bound).float()


def check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be between 0 and {MAX_SEED}, got {seed}")


def load_generator(path: str | Path, device: str = "cpu", prefer_ema: bool = True) -> LoadedGenerator:
    """Load the generator of a checkpoint file or of a run directory's newest checkpoint."""
    ckpt = load_checkpoint(resolve_checkpoint(path))
    try:
        registry = get_registry()
        models = build_within_memory(lambda: build_models(ckpt.config, ckpt.data, registry, augment=False),
                                     ckpt.config, registry, "")  # no augmentation when sampling
    except GanToolkitError as e:
        raise build_error(ckpt, e) from None
    target = resolve_device(device)
    generator = models.generator
    state = ckpt.generator_state(prefer_ema)
    bad = next((k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())), None)
    if bad is not None:  # it would only draw garbage
        raise CheckpointError(f"{ckpt.path} holds NaN or infinite generator weights ({bad})",
                              "use an earlier checkpoint of the run")
    try:
        generator.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(
            f"{ckpt.path} does not match the generator its configuration builds ({state_dict_problem(e)})",
            "was it written by another version of the plugin?",
        ) from None
    generator.to(target).eval()
    return LoadedGenerator(ckpt, models, generator, target)


def state_dict_problem(error: RuntimeError) -> str:
    """The first concrete problem in a `load_state_dict` error (torch puts a generic first line before them)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0] if lines else ""
    return detail if len(detail) <= 240 else detail[:237] + "..."
