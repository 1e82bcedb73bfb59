"""Self-describing safetensors files other than checkpoints (classifiers, directions): write atomically, read safely.

Each file is tensors plus string metadata holding a `format` tag, a `format_version` and JSON values. Reading checks
the tag before any tensor is loaded, and a pickle or zip disguised as safetensors is refused without being opened
by an unpickler: nothing is ever unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from gantoolkit.checkpoint import sniff_safetensors
from gantoolkit.errors import CheckpointError
from gantoolkit.outputs import Output


def write_file(path: str | Path | Output, tensors: dict[str, torch.Tensor], fmt: str, version: int,
               meta: dict[str, Any]) -> None:
    """Write `tensors` with metadata {format, format_version, key: JSON} atomically, never over another kind of
    file (an `Output` says what else may be replaced: --force, the command's inputs)."""
    output = path if isinstance(path, Output) else Output(Path(path), fmt)
    output.check()
    strings = {"format": fmt, "format_version": str(version)}
    strings.update({k: json.dumps(v, sort_keys=True) for k, v in meta.items()})
    plain = {k: v.detach().to("cpu").clone(memory_format=torch.contiguous_format) for k, v in tensors.items()}
    try:
        output.write(save(plain, metadata=strings))
    except OSError as e:
        raise CheckpointError(f"could not write {str(output.path)!r}: {e.strerror or e}",
                              "check the folder exists") from None


def read_file(path: Path, fmt: str, version: int, what: str, hint: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of a `fmt` file (JSON values decoded), or one clear `CheckpointError`."""
    path = Path(path)
    sniff_safetensors(path, f"{what} file", hint)
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r} is not a safetensors file, or is truncated ({e})", hint) from None
    if raw.get("format") != fmt:
        found = f"a {raw['format']!r} file" if raw.get("format") else "a safetensors file without gantoolkit metadata"
        raise CheckpointError(f"{str(path)!r} is {found}, not a {what}", hint)
    if raw.get("format_version") not in {str(v) for v in range(1, version + 1)}:
        raise CheckpointError(f"{str(path)!r} has {what} format {raw.get('format_version')!r}", "upgrade gantoolkit")
    meta: dict[str, Any] = {}
    try:
        for key, value in raw.items():
            meta[key] = value if key in ("format", "format_version") else json.loads(value)
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r} is a damaged {what} file ({e})", hint) from None
    return tensors, meta
