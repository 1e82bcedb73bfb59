"""What the demo shows for a set of control values: plain torch, no Gradio (tested directly).

Everything is loaded once (`DemoEngine.load`): the generator, its controls, the classifier. Each request is checked
(`DemoEngine.settings`), then turned into images:

- the grid: `grid²` samples named by the seed exactly as `gantool sample --seed S --n grid²` names them (the first
  image of every grid is the sample of grid size 1), moved by the controls, and by the classifier edit if one was
  made for this seed, grid and truncation; for generators of 2-D points, a scatter plot of that many `points` on
  axes fixed once per model, the data's true modes marked
- the previews: per control, a strip of one seed's sample from the control's lowest value to its highest, made once
- the interpolation: frames from one seed's latent to another's, with the same class and controls
- "more of": classifier-gradient steps on the current latents (`controllers.editing.edit_latents`), kept as a
  change of z (`Edit`) that later requests add back, with the target's probability after every step and the
  picture before the first step

Small images are enlarged with nearest neighbour for display; the download is the generator's own pixels.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantoolkit.controllers.latent import interpolate
from gantoolkit.data import to_uint8
from gantoolkit.demo.controls import Control, apply_controls, gather_controls, real, shown
from gantoolkit.demo.plot import plot_bounds, scatter_plot
from gantoolkit.errors import ConfigError
from gantoolkit.files.images import grid as make_grid
from gantoolkit.files.images import png_bytes
from gantoolkit.sampling.generator import LoadedGenerator, load_generator

#: seeds the page accepts: every integer a browser's number keeps exactly
MAX_SEED = 2**53 - 1
MAX_GRID = 8
MAX_FRAMES = 16
MAX_EDIT_STEPS = 50
#: truncation 0 means off; otherwise it lies in [MIN_TRUNCATION, MAX_TRUNCATION]
MIN_TRUNCATION, MAX_TRUNCATION = 0.05, 3.0
#: the displayed grid is enlarged to about this many pixels across
DISPLAY_SIDE = 384
#: how many points the page draws for generators of 2-D vectors: at first, and at most
DEFAULT_POINTS, MAX_POINTS = 512, 8192
#: frames of each control's preview strip, and the side of one frame in pixels
PREVIEW_FRAMES, PREVIEW_SIDE = 5, 48
#: the longest class name a request may send
MAX_NAME = 100


@dataclass(frozen=True)
class Settings:
    """One checked request: the sample grid and the control values."""

    seed: int
    class_index: int | None
    truncation: float | None
    grid: int
    values: dict[str, float | int | None] = field(default_factory=dict)
    #: how many points a generator of 2-D vectors draws (0 for images)
    points: int = 0

    @property
    def n(self) -> int:
        return self.grid * self.grid


@dataclass(frozen=True)
class Edit:
    """A classifier edit: the change of z it made to the latents of (seed, n, truncation)."""

    seed: int
    n: int
    truncation: float | None
    delta: torch.Tensor
    target: int
    steps: int
    #: the classifier's mean probability of the target before the first step and after each step since
    probabilities: tuple[float, ...] = ()

    @property
    def before(self) -> float:
        return self.probabilities[0]

    @property
    def after(self) -> float:
        return self.probabilities[-1]

    def applies_to(self, s: Settings, n: int) -> bool:
        return (self.seed, self.n, self.truncation) == (s.seed, n, s.truncation)


@dataclass
class Picture:
    """What one request made: the enlarged image to show, the generator's own pixels as PNG, and the time taken."""

    display: np.ndarray
    png: bytes
    seconds: float
    note: str = ""


def _integer(value: Any, what: str, low: int, high: int) -> int:
    """A whole number in [low, high] (an int, or a float without a fraction), or one ConfigError."""
    number = real(value)
    if number is None or not math.isfinite(number) or not number.is_integer() or not low <= number <= high:
        raise ConfigError(f"{what} must be a whole number between {low} and {high}, got {shown(value)}")
    return int(number)


def _number(value: Any, what: str) -> float:
    """A finite real number, or one ConfigError."""
    number = real(value)
    if number is None:
        raise ConfigError(f"{what} must be a number, got {shown(value)}")
    if not math.isfinite(number):
        raise ConfigError(f"{what} must be a finite number, got {shown(value)}")
    return number


def _name_or_index(value: Any, what: str) -> str | int:
    """A class name (text of at most MAX_NAME characters) or an index (a whole number), checked for its type only:
    the model or the classifier checks that it names one of its classes."""
    if isinstance(value, str) and len(value) <= MAX_NAME:
        return value
    number = real(value)
    if number is not None and math.isfinite(number) and number.is_integer():
        return int(number)
    if isinstance(value, str):
        raise ConfigError(f"{what} {shown(value)} is too long to be a class name", "choose a class from the list")
    raise ConfigError(f"{what} must be a class name or an index, got {shown(value)}")


def enlarge(image: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 C×H×W -> the same picture enlarged (nearest neighbour) to about `side` pixels across."""
    scale = max(1, round(side / max(image.shape[1:])))
    return image.repeat_interleave(scale, 1).repeat_interleave(scale, 2)


def to_display(image: torch.Tensor) -> np.ndarray:
    """uint8 C×H×W -> H×W (grey) or H×W×3 numpy, as Gradio shows it."""
    array = image.permute(1, 2, 0).cpu().numpy()
    return array[..., 0] if array.shape[2] == 1 else array


class DemoEngine:
    """A loaded generator and its controls; turns checked settings into pictures (thread-safe)."""

    def __init__(self, model: LoadedGenerator, controls: list[Control], notes: list[str] | None = None,
                 classifier: Any = None) -> None:
        if not model.data.is_image and model.data.shape[0] != 2:
            raise ConfigError(f"the demo draws images or 2-D points; this generator makes {model.data.shape[0]}-D "
                              "vectors", "use gantool sample --out samples.npz")
        self.model = model
        self.controls = controls
        self.notes = list(notes or [])
        self.classifier = classifier
        self._lock = threading.Lock()
        self.bounds = None if model.data.is_image else plot_bounds(
            model.data, model.generate(model.latents(MAX_POINTS, 0), model.labels(MAX_POINTS, self._first_class()),
                                       model.codes(MAX_POINTS, 0)))

    def _first_class(self) -> int | None:
        return 0 if self.model.conditional else None

    @classmethod
    def load(cls, checkpoint: str | Path, directions: list[Path] | None = None, classifier: Path | None = None,
             auto_directions: str | None = "sefa", num_directions: int = 5, device: str = "cpu",
             prefer_ema: bool = True) -> DemoEngine:
        """Everything the demo needs, loaded and checked once."""
        if num_directions < 0:
            raise ConfigError(f"--num-directions must be zero or more, got {num_directions}")
        model = load_generator(checkpoint, device, prefer_ema=prefer_ema)
        clf = None
        if classifier is not None:
            from gantoolkit.classifiers import load_classifier
            from gantoolkit.controllers.editing import check_pair

            clf = load_classifier(classifier).to(model.device)
            check_pair(model, clf)
        controls, notes = gather_controls(model, list(directions or []), auto_directions, num_directions)
        return cls(model, controls, notes, clf)

    # -- what the page offers ---------------------------------------------------------------------------------------

    @property
    def class_names(self) -> list[str]:
        return list(self.model.class_names) if self.model.conditional else []

    @property
    def target_names(self) -> list[str]:
        """The classes "more of" can move towards (the classifier's)."""
        return list(self.classifier.class_names) if self.classifier is not None else []

    def control(self, name: str) -> Control:
        for c in self.controls:
            if c.name == name:
                return c
        raise ConfigError(f"no control {name!r}")

    def summary(self) -> dict[str, Any]:
        """The checkpoint's summary (architecture, loss, conditioning, controllers, step, data, ...)."""
        return self.model.checkpoint.summary()

    def default_settings(self) -> Settings:
        """What the page shows first: seed 0, the first class, no truncation, one sample, controls at rest."""
        return self.settings(0, self.class_names[0] if self.class_names else None, 0,
                             1 if self.model.data.is_image else DEFAULT_POINTS, {})

    def warm_up(self) -> float:
        """Draw the first picture once, so the first visitor does not wait for the libraries to warm up."""
        return self.render(self.default_settings()).seconds

    # -- checking requests ------------------------------------------------------------------------------------------

    def settings(self, seed: Any, class_name: Any, truncation: Any, grid: Any,
                 values: dict[str, Any] | None = None) -> Settings:
        """A request checked against the model and the declared ranges, or a `ConfigError` saying what is wrong.
        `grid` is the grid's side for images and the number of points for 2-D vectors."""
        seed = _integer(seed, "seed", 0, MAX_SEED)
        class_index = None
        if self.model.conditional:
            if class_name is None or (isinstance(class_name, str) and class_name.strip() == ""):
                raise ConfigError("choose a class", f"this model has classes {', '.join(self.class_names[:10])}")
            class_index = self.model.class_index(_name_or_index(class_name, "the class"))
        elif class_name not in (None, ""):
            raise ConfigError("this generator is unconditional; it takes no class")
        t = _number(truncation, "truncation")
        if t != 0 and not MIN_TRUNCATION <= t <= MAX_TRUNCATION:
            raise ConfigError(f"truncation must be 0 (off) or between {MIN_TRUNCATION:g} and {MAX_TRUNCATION:g}, "
                              f"got {shown(truncation)}")
        points = 0
        if self.model.data.is_image:
            grid = _integer(grid, "grid size", 1, MAX_GRID)
        else:
            points, grid = _integer(grid, "points", 1, MAX_POINTS), 1
        values = dict(values or {})
        unknown = sorted(set(values) - {c.name for c in self.controls})
        if unknown:
            raise ConfigError(f"no control named {shown(unknown[0])}")
        checked = {c.name: c.check(values.get(c.name, None if c.kind == "category" else c.default))
                   for c in self.controls}
        return Settings(seed, class_index, t or None, grid, checked, points)

    # -- making pictures --------------------------------------------------------------------------------------------

    def _count(self, s: Settings) -> int:
        return s.n if self.model.data.is_image else s.points

    def inputs(self, s: Settings, edit: Edit | None = None) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                      torch.Tensor | None]:
        """(z, labels, codes) of the grid: the seed's latents moved by the controls and a matching edit."""
        n = self._count(s)
        z, codes = apply_controls(self.controls, s.values, self.model.latents(n, s.seed, s.truncation),
                                  self.model.codes(n, s.seed))
        if edit is not None and edit.applies_to(s, n):
            z = z + edit.delta
        return z, self.model.labels(n, s.class_index), codes

    def _picture(self, samples: torch.Tensor, cols: int, started: float, note: str = "") -> Picture:
        if self.model.data.is_image:
            images = to_uint8(samples)
            native = make_grid(images, cols, pad=2 if cols > 1 else 0)
            side = max(images.shape[-2:])
            scale = max(1, round(DISPLAY_SIDE / (cols * side)))
            big = images.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
            shown = make_grid(big, cols, pad=4 if cols > 1 else 0)
            return Picture(to_display(shown), png_bytes(native), time.perf_counter() - started, note)
        assert self.bounds is not None
        plot = np.array(scatter_plot(samples, self.model.data, self.bounds))  # writable, for torch
        return Picture(plot, png_bytes(torch.from_numpy(plot).permute(2, 0, 1)), time.perf_counter() - started, note)

    def render(self, s: Settings, edit: Edit | None = None) -> Picture:
        """The grid for these settings."""
        started = time.perf_counter()
        with self._lock:
            z, labels, codes = self.inputs(s, edit)
            samples = self.model.generate(z, labels, codes)
        cols = s.grid if self.model.data.is_image else 1
        edited = edit is not None and edit.applies_to(s, self._count(s))
        return self._picture(samples, cols, started, f"edited: {edit.steps} steps" if edited and edit else "")

    def interpolation(self, s: Settings, to_seed: Any, frames: Any, spherical: bool = False) -> Picture:
        """Frames from the latent of `s.seed` to that of `to_seed` (lerp or slerp), with the same class and controls."""
        started = time.perf_counter()
        to_seed = _integer(to_seed, "the other seed", 0, MAX_SEED)
        frames = _integer(frames, "frames", 2, MAX_FRAMES)
        if not self.model.data.is_image:
            raise ConfigError("interpolation strips are drawn for image generators")
        with self._lock:
            a, b = self.model.latents(1, s.seed, s.truncation)[0], self.model.latents(1, to_seed, s.truncation)[0]
            path = interpolate(a, b, frames, spherical=bool(spherical))
            base_codes = self.model.codes(1, s.seed)
            z, codes = apply_controls(self.controls, s.values, path,
                                      base_codes.expand(frames, -1) if base_codes is not None else None)
            samples = self.model.generate(z, self.model.labels(frames, s.class_index), codes)
        return self._picture(samples, frames, started)

    def previews(self) -> dict[str, np.ndarray]:
        """Per control, what it changes: the first picture's sample (seed 0, the first class) at PREVIEW_FRAMES
        values from the control's lowest to its highest (a category: each of its categories, at most ten), side by
        side. Images only (a 2-D scatter has no small picture); made once, when the page is built."""
        if not self.model.data.is_image:
            return {}
        out: dict[str, np.ndarray] = {}
        base = self.default_settings()
        for control in self.controls:
            if control.kind == "category":
                values: list[float | int | None] = list(range(min(control.size, 10)))
            else:
                values = [float(v) for v in np.linspace(control.minimum, control.maximum, PREVIEW_FRAMES)]
            zs: list[torch.Tensor] = []
            codes: list[torch.Tensor] = []
            for value in values:
                z, _, c = self.inputs(Settings(0, base.class_index, None, 1, {**base.values, control.name: value}))
                zs.append(z)
                if c is not None:
                    codes.append(c)
            n = len(values)
            with self._lock:
                samples = self.model.generate(torch.cat(zs), self.model.labels(n, base.class_index),
                                              torch.cat(codes) if codes else None)
            images = to_uint8(samples)
            scale = max(1, round(PREVIEW_SIDE / max(images.shape[-2:])))
            big = images.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
            out[control.name] = to_display(make_grid(big, n, pad=2))
        return out

    def more_of(self, s: Settings, target: Any, steps: Any, edit: Edit | None = None,
                step_size: float = 0.5) -> tuple[Edit, Picture, Picture, str]:
        """Classifier-gradient steps on the current latents towards `target` (a classifier class name or index);
        returns the accumulated edit, the picture before any edit, the edited picture, and the classifier's mean
        probability of the target before the first step and after each step."""
        from gantoolkit.controllers.editing import edit_latents

        if self.classifier is None:
            raise ConfigError("no classifier was given", "start the demo with --classifier clf.safetensors")
        if target is None or (isinstance(target, str) and target.strip() == ""):
            raise ConfigError("choose the class to move towards")
        index = self.classifier.class_index(_name_or_index(target, "the class to move towards"))
        steps = _integer(steps, "steps", 1, MAX_EDIT_STEPS)
        started = time.perf_counter()
        n = self._count(s)
        previous = edit if edit is not None and edit.applies_to(s, n) else None
        with self._lock:
            z, labels, codes = self.inputs(s, previous)
            result = edit_latents(self.model, self.classifier, z, index, steps, step_size, 0.0, labels, codes)
        delta = result.z_after - result.z_before + (previous.delta if previous is not None else 0.0)
        total = steps + (previous.steps if previous is not None else 0)
        means = tuple(float(p) for p in result.target_prob.mean(1).tolist())
        if previous is not None and previous.target == index:
            means = previous.probabilities + means[1:]  # one curve from the unedited sample on
        new = Edit(s.seed, n, s.truncation, delta, index, total, means)
        name = self.classifier.class_names[index]
        message = (f"p({name}) {means[-steps - 1]:.3f} → {new.after:.3f} after {steps} steps ({total} in all); "
                   f"per step: {' '.join(f'{p:.2f}' for p in means)}")
        before = self.render(s)
        picture = self.render(s, new)
        picture.seconds = time.perf_counter() - started
        return new, before, picture, message
