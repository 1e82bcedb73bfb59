"""The run configuration: one dataclass, built from defaults < preset or TOML file < command-line flags.

It is saved as JSON in every checkpoint, so a run can be rebuilt (and resumed) from the checkpoint alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomllib

from gantoolkit.errors import ConfigError, did_you_mean
from gantoolkit.files.reading import PICKLE_SNIFF, open_regular, pickle_protocol
from gantoolkit.options import coerce

COMPONENT_FIELDS = ("arch", "loss", "cond", "data", "augment")
#: largest training seed (the data order is seeded with seed * 1_000_003 + epoch, which must fit in 64 bits)
MAX_SEED = 2**32 - 1
#: largest side of --image-size (a whole dataset is held in memory at this size)
MAX_IMAGE_SIZE = 4096
#: largest --latent-dim (StyleGAN's is 512)
MAX_LATENT_DIM = 65_536
#: largest --steps of a run (a billion generator steps is years of compute; more is a typo)
MAX_STEPS = 10**9
#: largest count of any other loop a user's number drives (critic, refinement and edit steps, classifier epochs)
MAX_ITERATIONS = 10**6
#: most samples of one --track measurement (twice FID's 50,000; they are drawn at once)
MAX_TRACK_N = 100_000
#: settings that name a path or say what the program does beyond training the run (where data lives, whether to
#: download it, the device, compiling, CPU threads, data loader workers, loggers): they come from the command line or
#: the defaults, never from a file a command reads (a checkpoint's saved configuration is not obeyed on them)
FROM_COMMAND_LINE = ("data_root", "download", "device", "compile", "threads", "workers", "loggers")
#: most --workers (DataLoader processes reading a streamed dataset)
MAX_WORKERS = 64


@dataclass
class Choice:
    """A component by name, with its options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}


@dataclass
class RunConfig:
    """Everything that defines a training run."""

    arch: Choice = field(default_factory=lambda: Choice("dcgan"))
    loss: Choice = field(default_factory=lambda: Choice("bce"))
    cond: Choice = field(default_factory=lambda: Choice("none"))
    data: Choice = field(default_factory=lambda: Choice("digits"))
    controllers: list[Choice] = field(default_factory=list)
    #: what the critic's inputs go through while training (`--augment`; "none": nothing)
    augment: Choice = field(default_factory=lambda: Choice("none"))
    latent_dim: int = 100
    #: images' side (square) or (height, width); see `parse_image_size`
    image_size: int | tuple[int, int] | None = None
    batch_size: int = 64
    steps: int = 1000
    n_critic: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    lr_g: float | None = None
    lr_d: float | None = None
    betas: tuple[float, float] | None = None
    ema: float = 0.0
    lr_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    #: DataLoader worker processes of a streamed dataset (None: gantoolkit.data.streaming.default_workers)
    workers: int | None = None
    amp: bool | None = None
    compile: bool = False
    sample_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 50
    keep_checkpoints: int = 3
    data_root: str = "data"
    download: bool = False
    on_bad_image: Literal["error", "skip"] = "error"
    on_nan: Literal["stop", "rollback"] = "stop"
    g_batch: Literal["fresh", "reuse"] = "fresh"
    track: list[str] = field(default_factory=list)
    track_every: int = 500
    track_n: int = 2500
    loggers: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Choice):
                value = value.to_json()
            elif f.name == "controllers":
                value = [c.to_json() for c in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunConfig:
        """A configuration saved in a file (a checkpoint). Its paths and actions (`FROM_COMMAND_LINE`) are not read:
        they keep their defaults, and a command sets them from its own flags only."""
        if not isinstance(raw, dict):
            raise ConfigError("checkpoint config must be a table of settings")
        saved = {k: v for k, v in raw.items() if str(k).replace("-", "_") not in FROM_COMMAND_LINE}
        return apply_layer(cls(), saved, "checkpoint config")

    def validate(self) -> RunConfig:
        """Raise ConfigError for values no run can use."""
        positive = ["latent_dim", "batch_size", "steps", "sample_every", "checkpoint_every", "log_every",
                    "track_every"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{_flag(name)} must be at least 1, got {getattr(self, name)}")
        if self.latent_dim > MAX_LATENT_DIM:
            raise ConfigError(f"--latent-dim must be at most {MAX_LATENT_DIM:,}, got {self.latent_dim:,}")
        if self.steps > MAX_STEPS:
            raise ConfigError(f"--steps must be at most {MAX_STEPS:,}, got {self.steps:,}")
        if not 2 <= self.track_n <= MAX_TRACK_N:
            raise ConfigError(f"--track-n must be between 2 and {MAX_TRACK_N:,}, got {self.track_n:,}")
        if self.track:
            from gantoolkit.registry import get_registry

            known = get_registry().names("metric")
            for name in self.track:
                if name.replace("_", "-") not in known:
                    raise ConfigError(f"--track: unknown metric {name!r}", did_you_mean(name, known))
        if self.loggers:
            from gantoolkit.registry import get_registry

            for name in self.loggers:
                get_registry().get("logger", name)  # an unknown name: the closest ones
        if self.keep_checkpoints < 1:
            raise ConfigError(f"--keep-checkpoints must be at least 1, got {self.keep_checkpoints}")
        if self.image_size is not None and not all(1 <= s <= MAX_IMAGE_SIZE for s in height_width(self.image_size)):
            raise ConfigError(f"--image-size must be between 1 and {MAX_IMAGE_SIZE} pixels, got "
                              f"{format_image_size(self.image_size)}", "e.g. --image-size 64 or --image-size 64x32")
        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise ConfigError(f"--threads must be between 1 and 1024, got {self.threads}")
        if self.workers is not None and not 0 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"--workers must be between 0 and {MAX_WORKERS}, got {self.workers}",
                              "use --workers 0 to read the data in the training process, or leave it out")
        if self.n_critic is not None and self.n_critic < 1:
            raise ConfigError(f"--n-critic must be at least 1, got {self.n_critic}")
        for name in ("lr", "lr_g", "lr_d"):
            value = getattr(self, name)
            if value is not None and not 0 < value < math.inf:
                raise ConfigError(f"--{_flag(name)} must be a positive finite number, got {value}")
        if self.betas is not None and not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"--betas must lie in [0, 1), got {','.join(map(str, self.betas))}")
        if not 0 <= self.lr_decay <= 1:
            raise ConfigError(f"--lr-decay is the share of the run over which the learning rates fall to zero, in "
                              f"[0, 1] (0 turns it off), got {self.lr_decay}")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"--ema is a decay in [0, 1) (0 turns it off), got {self.ema}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"--seed must be between 0 and {MAX_SEED}, got {self.seed}")
        return self


def _flag(name: str) -> str:
    return name.replace("_", "-")


_SIZE = re.compile(r"^\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?$")


def parse_image_size(value: Any, where: str = "--image-size") -> int | tuple[int, int] | None:
    """`64` or "64" -> 64 (square); "64x32" or [64, 32] -> (64, 32): height first, as torchvision's
    `Resize((h, w))` and C×H×W tensors (PIL's `Image.resize` takes (width, height)). A square HxW is its side."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(type(v) is int for v in value):
        height, width = value
    elif type(value) is int:
        height = width = value
    else:
        match = _SIZE.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(f"{where} expects a side or HEIGHTxWIDTH in pixels, got {value!r}",
                              "e.g. --image-size 64, or --image-size 64x32 for 64 high and 32 wide")
        height = int(match.group(1))
        width = int(match.group(2)) if match.group(2) is not None else height
    return height if height == width else (height, width)


def height_width(size: int | tuple[int, int]) -> tuple[int, int]:
    """(height, width) of an image size."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def format_image_size(size: int | tuple[int, int]) -> str:
    """"64" for a square size, "64x32" (height x width) otherwise."""
    height, width = height_width(size)
    return str(height) if height == width else f"{height}x{width}"


FIELD_TYPES: dict[str, Any] = typing.get_type_hints(RunConfig)
FIELDS = [f.name for f in dataclasses.fields(RunConfig)]
ALIASES = {"architecture": "arch", "conditioning": "cond", "dataset": "data", "controller": "controllers",
           "augmentation": "augment"}


def parse_choice(value: Any, where: str) -> Choice:
    """`"dcgan"`, or a table `{name = "dcgan", ngf = 32}` / `{name = ..., options = {...}}`."""
    if isinstance(value, Choice):
        return Choice(value.name, dict(value.options))
    if isinstance(value, str):
        if not value.strip():
            raise ConfigError(f"{where} needs a name")
        return Choice(value.strip())
    if isinstance(value, dict):
        table = dict(value)
        name = table.pop("name", None)
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where} needs a `name`", f'for example {where} = {{ name = "dcgan" }}')
        options = table.pop("options", {})
        if not isinstance(options, dict):
            raise ConfigError(f"{where}.options must be a table")
        return Choice(name.strip(), {**options, **table})
    raise ConfigError(f"{where} must be a name or a table, got {value!r}")


def apply_layer(base: RunConfig, layer: dict[str, Any], source: str) -> RunConfig:
    """A copy of `base` with the values in `layer` applied. Options of a component whose name changes are
    dropped (they belonged to the old component)."""
    if not isinstance(layer, dict):
        raise ConfigError(f"{source} must be a table of settings")
    config = dataclasses.replace(base)
    for raw_key, value in layer.items():
        key = ALIASES.get(str(raw_key).replace("-", "_"), str(raw_key).replace("-", "_"))
        if key not in FIELD_TYPES:
            raise ConfigError(f"{source}: unknown setting {raw_key!r}", did_you_mean(str(raw_key), FIELDS))
        if key in COMPONENT_FIELDS:
            choice = parse_choice(value, key)
            old = getattr(config, key)
            if choice.name == old.name:
                choice = Choice(choice.name, {**old.options, **choice.options})
            setattr(config, key, choice)
        elif key == "controllers":
            items = value if isinstance(value, list) else [value]
            config.controllers = [parse_choice(v, "controller") for v in items]
        elif key == "image_size":
            where = "--image-size" if source == "command line" else f"{source}: image-size"
            config.image_size = parse_image_size(value, where)
        else:
            setattr(config, key, coerce(value, FIELD_TYPES[key], f"{source}: {_flag(key)}"))
    return config


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's settings; a regular file only (a FIFO or a device is refused before it is read)."""
    try:
        with open_regular(path) as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as e:
        if os.path.islink(path):
            raise ConfigError(f"cannot read config file {str(path)!r}: {e.strerror}") from None
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {str(path)!r}: {e.strerror}") from None
    protocol = pickle_protocol(raw[:PICKLE_SNIFF])
    if protocol is not None:
        raise ConfigError(f"config file {str(path)!r} is a pickle file (protocol {protocol}), not TOML; gantoolkit "
                          "never unpickles files")
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {str(path)!r} is larger than {MAX_CONFIG_BYTES // 2**20} MiB; it is not a "
                          "run configuration")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(path)!r} is not a TOML text file (it is not UTF-8)") from None


#: a TOML run configuration is a few hundred bytes; a file larger than this is not one
MAX_CONFIG_BYTES = 2**20
