"""The demo's editing controls: one per direction, and how their values move a generator's inputs.

A control comes from a set of `Directions` (a directions file, the generator's own InfoGAN-style codes, or a finder
run when the demo starts):

- `z`         a unit direction in z-space; the value α adds α·d to every latent (0 leaves the sample as it is)
- `code`      a continuous code; the value α moves every sample's own code by α along d (0 leaves the sample as
              `gantool sample` draws it)
- `category`  a categorical code; the value picks one category for every sample, or None keeps each sample's own
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gantoolkit.controllers.directions import DirectionFinder, Directions, load_directions
from gantoolkit.errors import ConfigError, GanToolkitError
from gantoolkit.sampling.generator import LoadedGenerator

#: z-space sliders run from -Z_RANGE to Z_RANGE (directions are unit vectors; |z| is about √latent_dim)
Z_RANGE = 5.0
#: a continuous code's slider moves it by up to this many half-widths of its trained range (±2 for codes in ±1)
CODE_STRETCH = 2.0
#: the most of a refused value an error message repeats
SHOWN = 40


def shown(value: Any) -> str:
    """`repr(value)` cut short: an error message never repeats a long value (or a huge number) in full."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = "a number too long to show"
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def real(value: Any) -> float | None:
    """`value` as a float when it is a real number (an int or float, not a bool, a string, None or a list), else
    None. NaN stays NaN; a number too large for a float becomes ±inf."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:  # an int too large for a float
        return math.inf if isinstance(value, int) and value > 0 else -math.inf
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Control:
    """One slider (`z`, `code`) or selector (`category`) of the demo; see the module docstring."""

    name: str
    kind: str
    source: str
    minimum: float = 0.0
    maximum: float = 0.0
    step: float = 0.1
    default: float = 0.0
    vector: torch.Tensor | None = None
    offset: int = 0
    size: int = 0

    def check(self, value: Any) -> float | int | None:
        """The value, checked against the control's type and range; None is only a category's "keep each sample's
        own"."""
        number = real(value)
        if self.kind == "category":
            if value is None:
                return None
            if number is None or not math.isfinite(number) or not number.is_integer() or not 0 <= number < self.size:
                raise ConfigError(f"{self.name} takes a category 0..{self.size - 1}, got {shown(value)}")
            return int(number)
        if number is None:
            raise ConfigError(f"{self.name} needs a number between {self.minimum:g} and {self.maximum:g}, "
                              f"got {shown(value)}")
        if not self.minimum <= number <= self.maximum:  # also refuses NaN
            raise ConfigError(f"{self.name} must be between {self.minimum:g} and {self.maximum:g}, "
                              f"got {shown(value)}")
        return number


def controls_from(directions: Directions, source: str) -> list[Control]:
    """The controls of one set of directions (names not yet made unique)."""
    out: list[Control] = []
    if directions.space == "z":
        for name, vector in zip(directions.names, directions.vectors, strict=True):
            out.append(Control(name, "z", source, -Z_RANGE, Z_RANGE, 0.1, 0.0, vector.float().clone()))
    else:
        low, high = (float(v) for v in directions.extra.get("continuous_range", (-1.0, 1.0)))
        half = (high - low) / 2 * CODE_STRETCH
        for name, vector in zip(directions.names, directions.vectors, strict=True):
            out.append(Control(name, "code", source, -half, half, 0.05, 0.0, vector.float().clone()))
    for slot in directions.categorical:
        out.append(Control(str(slot["name"]), "category", source, 0, int(slot["size"]) - 1, 1, 0,
                           offset=int(slot["offset"]), size=int(slot["size"])))
    return out


def unique_names(groups: list[list[Control]]) -> list[Control]:
    """All controls, a clashing name prefixed with its source (`sefa.safetensors:sefa0`)."""
    flat = [c for group in groups for c in group]
    counts: dict[str, int] = {}
    for c in flat:
        counts[c.name] = counts.get(c.name, 0) + 1
    renamed = [c if counts[c.name] == 1 else _renamed(c, f"{c.source}:{c.name}") for c in flat]
    seen: set[str] = set()
    out = []
    for c in renamed:
        name, k = c.name, 2
        while name in seen:  # the same file given twice
            name, k = f"{c.name}#{k}", k + 1
        seen.add(name)
        out.append(c if name == c.name else _renamed(c, name))
    return out


def _renamed(control: Control, name: str) -> Control:
    from dataclasses import replace

    return replace(control, name=name)


def own_code_directions(model: LoadedGenerator) -> list[Directions]:
    """The directions of the training controllers that are also direction finders (InfoGAN-style codes)."""
    found: list[Directions] = []
    names: set[str] = set()
    for controller in model.models.controllers.values():
        if not isinstance(controller, DirectionFinder):
            continue
        directions = controller.find(model)
        if set(directions.all_names) <= names:  # one finder may report the codes of its siblings too
            continue
        names.update(directions.all_names)
        found.append(directions)
    return found


def found_on_load(model: LoadedGenerator, finder_name: str, num: int) -> Directions:
    """Directions from the finder registered as `finder_name` (e.g. the default `sefa`), at most `num` of them."""
    from gantoolkit.controllers.directions import create_finder, find_directions
    from gantoolkit.registry import get_registry

    spec, _ = get_registry().get("finder", finder_name)
    options = {"num": min(num, model.latent_dim)} if "num" in spec.options() else {}
    return find_directions(create_finder(finder_name, options), model, finder_name)


def gather_controls(model: LoadedGenerator, files: list[Path], auto: str | None, num: int) -> tuple[list[Control],
                                                                                                     list[str]]:
    """The demo's controls and notes about where they came from: the directions files given (each checked against
    the generator), else the generator's own codes plus `num` directions of the finder `auto` (None: none)."""
    notes: list[str] = []
    groups: list[list[Control]] = []
    for path in files:
        directions = load_directions(path, model)
        groups.append(controls_from(directions, Path(path).name))
        notes.append(f"{len(directions.all_names)} {directions.method} directions from {Path(path).name}")
    if not files:
        for directions in own_code_directions(model):
            groups.append(controls_from(directions, directions.method))
            notes.append(f"{len(directions.all_names)} {directions.method} codes of the generator")
        if auto and num > 0:
            try:
                directions = found_on_load(model, auto, num)
            except GanToolkitError as e:
                raise ConfigError(f"--auto-directions {auto}: {e.message}",
                                  e.hint or "use --auto-directions none, or give --directions FILE") from None
            groups.append(controls_from(directions, directions.method))
            notes.append(f"{len(directions.all_names)} {directions.method} directions found on load")
    return unique_names(groups), notes


def apply_controls(controls: list[Control], values: dict[str, float | int | None], z: torch.Tensor,
                   codes: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latents and codes moved by checked control values (see the module docstring)."""
    z = z.clone()
    codes = codes.clone() if codes is not None else None
    for control in controls:
        value = values.get(control.name, control.default if control.kind != "category" else None)
        if control.kind == "z":
            assert control.vector is not None
            if value:
                z += float(value) * control.vector
        elif control.kind == "code":
            assert control.vector is not None and codes is not None
            if value:
                codes += float(value) * control.vector
        elif value is not None:
            assert codes is not None
            codes[:, control.offset : control.offset + control.size] = 0.0
            codes[:, control.offset + int(value)] = 1.0
    return z, codes
