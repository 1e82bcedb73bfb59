"""Resolving `--data NAME[:ARGUMENT]` through the registry and loading it."""

from __future__ import annotations

from pathlib import Path

from gantoolkit.config import Choice, RunConfig, format_image_size, height_width
from gantoolkit.data import DataRequest, Dataset, DataSource
from gantoolkit.errors import ConfigError, DataError
from gantoolkit.registry import Registry

#: the longest part of a file's data name shown in a message
SHOWN = 80


def load_dataset(config: RunConfig, registry: Registry) -> Dataset:
    """The dataset a run configuration names, checked against the data-source contract."""
    spec, argument = registry.get("dataset", config.data.name)
    config.data.options = spec.resolve(config.data.options)  # every option, defaults included, for the checkpoint
    source = spec.create(config.data.options)
    if not isinstance(source, DataSource):
        raise DataError(
            f"dataset {config.data.name!r} is not a gantoolkit DataSource", "its plugin breaks the contract"
        )
    shape = height_width(config.image_size) if config.image_size is not None else None
    request = DataRequest(
        argument=argument,
        image_size=config.image_size if isinstance(config.image_size, int) else None,
        image_shape=shape,
        data_root=Path(config.data_root).expanduser(),
        download=config.download,
        on_bad_image=config.on_bad_image,
        seed=config.seed,
    )
    dataset = source.load(request)
    if not isinstance(dataset, Dataset):
        raise DataError(f"dataset {config.data.name!r} returned {type(dataset).__name__}, not a gantoolkit Dataset")
    info = dataset.info
    if shape is None:
        return dataset
    asked = format_image_size(shape)
    if not info.is_image:
        raise DataError(f"--image-size {asked} applies to images, but {info.source!r} holds "
                        f"{'x'.join(map(str, info.shape))} vectors", "drop --image-size")
    made = tuple(info.shape[1:])
    if made != shape:
        square_only = shape[0] != shape[1] and len(made) == 2 and made[0] == made[1]
        raise DataError(f"dataset {config.data.name!r} made {'x'.join(map(str, made))} images, not the "
                        f"--image-size {asked} asked for",
                        f"it makes square images only: pass one side, e.g. --image-size {max(shape)}" if square_only
                        else "its plugin ignores --image-size")
    return dataset


def saved_data_path(choice: Choice, registry: Registry) -> str | None:
    """`choice.name` (NAME:ARGUMENT) when it is data read from a file whose argument may name a file or folder (see
    `DataSource.argument_is_path`; a factory that does not say is taken to read one), else None."""
    spec, argument = registry.get("dataset", choice.name)
    if argument is None:
        return None
    return choice.name if getattr(spec.load(), "argument_is_path", True) else None


def refuse_saved_path(choice: Choice, registry: Registry, fix: str) -> None:
    """ConfigError when a checkpoint's data names a path: a path is read only when the command line gives it.
    `fix` is the command that gives it, up to its `--data`."""
    saved = saved_data_path(choice, registry)
    if saved is None:
        return
    spec, _ = registry.get("dataset", saved)
    shown = saved if len(saved) <= SHOWN else saved[:SHOWN - 3] + "..."
    raise ConfigError(f"the checkpoint says its data is {shown!r}, a path; gantool reads only the paths given on "
                      f"the command line", f"{fix} --data {spec.name}:{spec.argument or 'ARGUMENT'}")
