"""Named directions in a trained generator's input space, the contract of the controllers that find them, and the
files that keep them.

A direction finder (`components.DirectionFinder`, re-exported here) is registered under
`register_direction_finders`; it is built from its options and `find(model)` returns `Directions`, which
`find_directions` checks against the generator.
Directions live in z-space (`space="z"`, moved by adding α·d: SeFa, PCA, classifier gradients) or in the space of
the controllers' codes (`space="codes"`, set so that ⟨c, d⟩ = α: InfoGAN's continuous codes). Categorical codes
have no direction; they are listed by name and shown one column per category.

A directions file is safetensors: a `directions` tensor (K × width) and JSON metadata with the names, the method,
the space and the identity of the checkpoint they belong to (a SHA-256 of the generator's weights, its path and
step), so directions are never applied to a generator they were not found for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gantoolkit.components import DirectionFinder
from gantoolkit.controllers.latent import MAX_FRAMES, check_frames
from gantoolkit.errors import CheckpointError, ConfigError, GanToolkitError, PluginError, did_you_mean
from gantoolkit.files.outputs import Output
from gantoolkit.sampling.generator import LoadedGenerator

FORMAT = "gantoolkit-directions"
FORMAT_VERSION = 1
_HINT = "give a file written by `gantool directions`"
#: the largest step along a unit direction (z itself has norm about sqrt(latent size))
MAX_ALPHA = 1000


def generator_identity(model: LoadedGenerator) -> dict[str, Any]:
    """What ties a file to this generator: a hash of its weights (as loaded), plus where they came from."""
    digest = hashlib.sha256()
    for key, value in sorted(model.generator.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().to("cpu").contiguous().numpy().tobytes())
    return {
        "sha256": digest.hexdigest(),
        "path": str(model.checkpoint.path),
        "step": model.checkpoint.step,
        "latent_dim": model.latent_dim,
        "code_dim": model.generator.code_dim,
    }


@dataclass
class Directions:
    """K named unit directions of one generator (see the module docstring)."""

    vectors: torch.Tensor
    names: list[str]
    method: str
    source: dict[str, Any]
    space: str = "z"
    categorical: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.space not in ("z", "codes"):
            raise ValueError(f"unknown direction space {self.space!r}")
        if self.vectors.dim() != 2 or len(self.vectors) != len(self.names):
            raise ValueError("directions need one name per row of a K×width tensor")
        if len(set(self.names)) != len(self.names):
            raise ValueError("direction names must be distinct")
        if len(self.names) + len(self.categorical) > MAX_DIRECTIONS or not all(isinstance(n, str) for n in self.names):
            raise ValueError(f"directions need at most {MAX_DIRECTIONS} names, each a string")
        if not self.vectors.is_floating_point() or not bool(torch.isfinite(self.vectors).all()):
            raise ValueError("the directions hold NaN or infinite values")
        for slot in self.categorical:
            if not (isinstance(slot, dict) and isinstance(slot.get("name"), str) and _count(slot.get("size"), 1)
                    and _count(slot.get("offset"), 0)):
                raise ValueError(f"a categorical code needs a name, a size >= 1 and an offset >= 0, got {slot!r}")
        low_high = self.extra.get("continuous_range", (-1.0, 1.0))
        if not (isinstance(low_high, (list, tuple)) and len(low_high) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= MAX_ALPHA
                        for v in low_high) and low_high[0] < low_high[1]):
            raise ValueError(f"continuous_range {low_high!r} is not two finite numbers low < high")

    def check_shape(self, model: LoadedGenerator, where: str = "these directions") -> None:
        """Refuse directions whose width or code slots do not fit this generator's latent or code size."""
        width = model.latent_dim if self.space == "z" else int(model.generator.code_dim or 0)
        what = "latent size" if self.space == "z" else "code size"
        if self.vectors.shape[1] != width and len(self.names):
            raise CheckpointError(f"{where} are {self.vectors.shape[1]}-dimensional, but this generator's {what} is "
                                  f"{width}", "find directions for this checkpoint with `gantool directions`")
        codes = int(model.generator.code_dim or 0)
        for slot in self.categorical:
            if int(slot["offset"]) + int(slot["size"]) > codes:
                raise CheckpointError(f"{where} name a categorical code {slot['name']!r} beyond this generator's "
                                      f"{codes} code entries", "find directions for this checkpoint with "
                                      "`gantool directions`")

    @property
    def all_names(self) -> list[str]:
        return [*self.names, *(slot["name"] for slot in self.categorical)]

    def check_name(self, name: str) -> None:
        if name not in self.all_names:
            choices = self.all_names
            hint = did_you_mean(name, choices) if choices else "this file holds no directions"
            raise ConfigError(f"no direction {name!r} in these {self.method} directions", hint)

    def vector(self, name: str) -> torch.Tensor:
        self.check_name(name)
        if name not in self.names:
            raise ConfigError(f"{name!r} is a categorical code: it has categories, not a direction")
        return self.vectors[self.names.index(name)]

    def check_model(self, model: LoadedGenerator, where: str = "these directions") -> None:
        """Refuse a generator other than the one the directions were found for (the shapes are checked first: the
        identity is the file's claim, which a file can copy)."""
        self.check_shape(model, where)
        mine = generator_identity(model)
        theirs = self.source
        if theirs.get("sha256") != mine["sha256"]:
            raise CheckpointError(
                f"{where} belong to {theirs.get('path')} (step {theirs.get('step')}, generator "
                f"{str(theirs.get('sha256'))[:12]}), not to {mine['path']} (step {mine['step']}, generator "
                f"{mine['sha256'][:12]})",
                "find directions for this checkpoint with `gantool directions` (same --ema setting)",
            )


__all__ = ["DirectionFinder", "Directions", "create_finder", "find_directions", "generator_identity", "unit_rows"]

_CONTRACT = "its plugin breaks the direction-finder contract (see the plugin guide, Direction finders)"


def create_finder(method: str, options: dict[str, Any] | None = None) -> DirectionFinder:
    """The direction finder registered as `method` (`gantool list finders`), built from its options."""
    from gantoolkit.registry import get_registry

    spec, _ = get_registry().get("finder", method)
    finder = spec.create(options)
    if not isinstance(finder, DirectionFinder):
        raise PluginError(f"direction finder {method!r} built a {type(finder).__name__}, not a gantoolkit "
                          "DirectionFinder (a subclass of gantoolkit.components.DirectionFinder with find(model))",
                          _CONTRACT)
    return finder


def find_directions(finder: DirectionFinder, model: LoadedGenerator, method: str) -> Directions:
    """`finder.find(model)`, checked: unit directions that fit this generator and name it as their source, or one
    line saying what is wrong with them."""
    try:
        found = finder.find(model)
    except GanToolkitError:
        raise
    except (ValueError, TypeError) as e:  # most often Directions(...) refusing what the finder built
        raise PluginError(f"direction finder {method!r} failed to make directions: {e}", _CONTRACT) from e
    if not isinstance(found, Directions):
        raise PluginError(f"direction finder {method!r} returned a {type(found).__name__}, not Directions", _CONTRACT)
    try:
        found.check_shape(model, f"the directions of finder {method!r}")
    except CheckpointError as e:
        raise PluginError(e.message, f"{'z' if found.space == 'z' else 'code'}-space directions are K x "
                          f"{'model.latent_dim' if found.space == 'z' else 'model.generator.code_dim'}; "
                          + _CONTRACT) from None
    norms = found.vectors.norm(dim=1)
    if len(norms) and not bool(((norms - 1).abs() < 1e-3).all()):
        raise PluginError(f"direction finder {method!r} returned directions of norm {norms.min():.4g} to "
                          f"{norms.max():.4g}, not unit vectors", "divide each row by its norm (unit_rows)")
    if found.source.get("sha256") != generator_identity(model)["sha256"]:
        raise PluginError(f"direction finder {method!r} returned directions whose source is not this generator, so "
                          "no command would apply them", "set source=generator_identity(model)")
    return found


#: the most directions one file may name
MAX_DIRECTIONS = 4096


def _count(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_DIRECTIONS * 1024


def unit_rows(vectors: torch.Tensor) -> torch.Tensor:
    return vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)


# -- files ----------------------------------------------------------------------------------------------------------


def save_directions(path: str | Path | Output, directions: Directions) -> None:
    import datetime

    from gantoolkit import __version__
    from gantoolkit.files.checkpoint import write_file

    meta = {
        "names": directions.names, "method": directions.method, "space": directions.space,
        "source": directions.source, "categorical": directions.categorical, "extra": directions.extra,
        "gantoolkit_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_file(path, {"directions": directions.vectors.float()}, FORMAT, FORMAT_VERSION, meta)


def load_directions(path: str | Path, model: LoadedGenerator | None = None) -> Directions:
    """Read a directions file; with `model`, also check that they belong to it."""
    from gantoolkit.files.checkpoint import read_file

    tensors, meta = read_file(Path(path), FORMAT, FORMAT_VERSION, "directions", _HINT)
    try:
        directions = Directions(tensors["directions"], list(meta["names"]), str(meta["method"]), dict(meta["source"]),
                                str(meta.get("space", "z")), list(meta.get("categorical", [])),
                                dict(meta.get("extra", {})))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r} has damaged directions metadata ({e})", _HINT) from None
    if model is not None:
        directions.check_model(model, f"the directions in {str(path)!r}")
    return directions


# -- using them -----------------------------------------------------------------------------------------------------


def parse_alphas(text: str, steps: int) -> list[float]:
    """`"-3,3"` with 7 steps -> -3, -2, ..., 3; three or more values are taken as they are."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--alphas expects numbers separated by commas, got {text!r}", "e.g. --alphas -3,3") from None
    if not all(abs(v) <= MAX_ALPHA for v in values):  # also false for NaN
        raise ConfigError(f"--alphas must be finite numbers between -{MAX_ALPHA:g} and {MAX_ALPHA:g}, got {text!r}",
                          "e.g. --alphas -3,3")
    if len(values) == 2:
        check_frames(steps, "--steps")
        return torch.linspace(values[0], values[1], steps).tolist()
    if not 2 <= len(values) <= MAX_FRAMES:
        raise ConfigError(f"--alphas needs 2 to {MAX_FRAMES} values, got {len(values)}", "e.g. --alphas -3,3")
    return values


def split_reference(reference: str) -> tuple[Path, str]:
    """`FILE:NAME` -> (FILE, NAME)."""
    path, sep, name = reference.rpartition(":")
    if not sep or not path or not name:
        raise ConfigError(f"--direction expects FILE:NAME, got {reference!r}", "e.g. dirs.safetensors:sefa0")
    return Path(path), name


def moved_inputs(
    directions: Directions, name: str, z: torch.Tensor, codes: torch.Tensor | None, alphas: list[float]
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Latents and codes for rows = samples, columns = alphas (or categories); returns (z, codes, columns)."""
    directions.check_name(name)
    n = len(z)
    if name not in directions.names:  # a categorical code: one column per category
        slot = next(s for s in directions.categorical if s["name"] == name)
        assert codes is not None
        size, offset = int(slot["size"]), int(slot["offset"])
        moved = codes.repeat_interleave(size, 0).clone()
        moved[:, offset : offset + size] = torch.eye(size).repeat(n, 1)
        return z.repeat_interleave(size, 0), moved, size
    d = directions.vector(name)
    a = torch.tensor(alphas, dtype=torch.float32)
    cols = len(alphas)
    if directions.space == "z":
        moved_z = z.repeat_interleave(cols, 0) + a.repeat(n)[:, None] * d
        return moved_z, codes.repeat_interleave(cols, 0) if codes is not None else None, cols
    assert codes is not None
    base = codes.repeat_interleave(cols, 0)
    current = base @ d
    moved_codes = base + (a.repeat(n) - current)[:, None] * d
    return z.repeat_interleave(cols, 0), moved_codes, cols


def direction_strip(
    model: LoadedGenerator, reference: str, alphas: list[float], n: int, seed: int = 0,
    class_index: int | None = None, truncation: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Samples for `gantool sample --direction FILE:NAME`: n rows (seeds), one column per alpha or category."""
    path, name = split_reference(reference)
    directions = load_directions(path, model)
    directions.check_name(name)
    z = model.latents(n, seed, truncation)
    codes = model.codes(n, seed)
    labels = model.labels(n, class_index)
    moved_z, moved_codes, cols = moved_inputs(directions, name, z, codes, alphas)
    labels = labels.repeat_interleave(cols, 0) if labels is not None else None
    return model.generate(moved_z, labels, moved_codes), labels, cols


def preview_grid(model: LoadedGenerator, directions: Directions, seed: int = 0,
                 alphas: tuple[float, ...] = (-3, -2, -1, 0, 1, 2, 3)) -> tuple[torch.Tensor, int]:
    """One row per direction (a seed's sample moved by each alpha; categorical codes: each category), padded to
    the widest row."""
    z, codes = model.latents(1, seed), model.codes(1, seed)
    labels = model.labels(1)
    rows, width = [], max([len(alphas)] + [int(s["size"]) for s in directions.categorical])
    for name in directions.all_names:
        moved_z, moved_codes, cols = moved_inputs(directions, name, z, codes, list(alphas))
        row_labels = labels.expand(cols) if labels is not None else None
        images = model.generate(moved_z, row_labels, moved_codes)
        pad = torch.ones(width - cols, *images.shape[1:])  # white
        rows.append(torch.cat([images, pad]))
    return torch.cat(rows), width
