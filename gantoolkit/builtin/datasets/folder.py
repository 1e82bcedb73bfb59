"""`folder:PATH`: every image in a folder, decoded once into the image cache, then held in memory or streamed from
the cache; class subfolders become labels."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from gantoolkit.builtin.datasets import imaging
from gantoolkit.builtin.datasets.folder_cache import cached_folder
from gantoolkit.data import IMAGE, DataInfo, DataRequest, Dataset, DataSource
from gantoolkit.data.streaming import Streamed, stream_reason
from gantoolkit.errors import DataError

DEFAULT_IMAGE_SIZE = 64
#: how an image becomes the size asked for, in the cache's key: change it when imaging.resize_and_crop changes
RESIZE = "lanczos, aspect kept until it covers the size, centre crop"
_EXTENSIONS = ", ".join(sorted(e.lstrip(".") for e in imaging.IMAGE_EXTENSIONS))


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _images_under(folder: Path) -> list[Path]:
    """Every image below `folder` (any depth, hidden files and folders left out), in sorted order."""
    found = [
        p for p in folder.rglob("*")
        if imaging.is_image_file(p) and all(_visible(part) for part in p.relative_to(folder).parents if part.name)
    ]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def scan_folder(root: Path, shown: str) -> tuple[list[Path], list[int] | None, list[str]]:
    """The image files under `root`, their class indices (None when unlabelled) and the class names."""
    top = sorted(p for p in root.iterdir() if imaging.is_image_file(p))
    classes = [(d.name, _images_under(d)) for d in sorted(root.iterdir(), key=lambda p: p.name)
               if d.is_dir() and _visible(d)]
    classes = [(name, files) for name, files in classes if files]
    if top and classes:
        names = ", ".join(name for name, _ in classes[:3]) + (", ..." if len(classes) > 3 else "")
        raise DataError(
            f"{shown} has both images at its top level ({len(top)}) and class subfolders with images ({names})",
            "use one layout: move the top-level images into a class subfolder, or keep only top-level images",
        )
    if top:
        return top, None, []
    if classes:
        files = [f for _, fs in classes for f in fs]
        labels = [i for i, (_, fs) in enumerate(classes) for _ in fs]
        return files, labels, [name for name, _ in classes]
    others = sum(1 for p in root.rglob("*") if p.is_file())
    found = f"{others} file(s) but none with an image extension" if others else "nothing"
    raise DataError(
        f"no images in {shown} (found {found})",
        f"put {_EXTENSIONS} files in it, or in one subfolder per class",
    )


class ImageFolder(DataSource):
    """Images in a folder (default size 64; `--image-size HxW` for other shapes), each resized with its aspect ratio
    kept until it covers the size, then centre-cropped: for a square size the shorter side becomes the size.

    Images directly in the folder are unlabelled; one subfolder per class (sorted names) makes labels.
    `channels`: 1 (grey) or 3 (RGB); by default 3 unless every image is greyscale. The first run decodes the images
    into the image cache (`gantool cache ls`); later runs on the same files read it. `stream`: true reads training
    batches from the cache with DataLoader workers, false holds the images in memory; by default they stream when
    they would take more than the memory budget (see gantoolkit.data.streaming).
    """

    def __init__(self, channels: int | None = None, stream: bool | None = None) -> None:
        if channels not in (None, 1, 3):
            raise DataError(f"folder channels must be 1 or 3, got {channels!r}", "use channels=1 or channels=3")
        self.channels = channels
        self.stream = stream

    def load(self, request: DataRequest) -> Dataset:
        shown = request.argument
        if not shown:
            raise DataError("the folder dataset needs a path", "use --data folder:PATH")
        root = Path(shown).expanduser()
        if not root.exists():
            raise DataError(f"image folder {shown!r} does not exist", "check the path given to --data folder:PATH")
        if not root.is_dir():
            raise DataError(f"{shown!r} is a file, not a folder", "pass the folder that holds the images")
        if request.on_bad_image not in ("error", "skip"):
            raise DataError(f"on_bad_image must be 'error' or 'skip', got {request.on_bad_image!r}",
                            "use --on-bad-image error or --on-bad-image skip")
        size = imaging.image_hw(request, DEFAULT_IMAGE_SIZE)
        try:
            files, labels, class_names = scan_folder(root, shown)
        except PermissionError as e:
            where = e.filename or shown
            raise DataError(f"cannot list {where}: permission denied", "check the folder's permissions") from e

        mode = {None: None, 1: "L", 3: "RGB"}[self.channels]
        asked = {"size": list(size), "resize": RESIZE, "channels": self.channels}
        entry = cached_folder(root, shown, files, labels, asked, lambda path: imaging.load_image(path, size, mode),
                              request.on_bad_image)
        skipped = [name for name, _ in entry.skipped]
        if skipped:
            print(f"warning: skipped {len(skipped)} unreadable image(s) in {shown} (first: {skipped[0]})",
                  file=sys.stderr)

        reason = stream_reason(entry.nbytes, self.stream)
        data = torch.from_numpy(entry.mapped() if reason else entry.load())
        found = entry.labels()
        targets = torch.from_numpy(found) if found is not None else None
        info = DataInfo(
            source=f"folder:{shown}",
            modality=IMAGE,
            shape=entry.shape,
            num_classes=len(class_names),
            class_names=tuple(class_names),
            extra={"skipped": skipped},
        )
        return Dataset(info, data, targets, Streamed(entry, reason) if reason else None)
