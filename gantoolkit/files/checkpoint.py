"""Checkpoints: one safetensors file, tensors under clear prefixes, the run described in JSON metadata.

Tensor prefixes: `generator.`, `critic.`, `ema.`, `optim.generator.`, `optim.critic.`, `rng.`.
Metadata (string -> string): format, format_version, kind ("training" or "generator"), step, config, data,
components (which plugin distribution and version provided each part), optim (optimizer hyper-parameters) and
data_state. Nothing is ever unpickled: a pickle disguised as a checkpoint is rejected before it is read.

Other self-describing safetensors files (classifiers, directions) are written and read here too (`write_file`,
`read_file`): tensors plus string metadata holding a `format` tag, a `format_version` and JSON values; reading
checks the tag before any tensor is loaded.
"""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from gantoolkit.config import MAX_LATENT_DIM, RunConfig
from gantoolkit.data import IMAGE, VECTOR, DataInfo, check_shape_bounds
from gantoolkit.errors import CheckpointError, ConfigError, GanToolkitError, UnknownComponentError
from gantoolkit.files.outputs import Output
from gantoolkit.files.outputs import atomic_write as atomic_write  # where every output is written
from gantoolkit.files.reading import PICKLE_SNIFF, open_regular, pickle_protocol

FORMAT = "gantoolkit"
FORMAT_VERSION = 1
TRAINING = "training"
GENERATOR_ONLY = "generator"

_ZIP_MAGIC = b"PK\x03\x04"
#: the tensors that make a model and its training state (everything but the RNG states)
STATE_PREFIXES = ("generator.", "critic.", "ema.", "optim.")


# -- writing ------------------------------------------------------------------------------------------------------


def _plain(t: torch.Tensor) -> torch.Tensor:
    """A CPU, contiguous copy that shares memory with nothing (what safetensors requires)."""
    return t.detach().to("cpu").clone(memory_format=torch.contiguous_format)


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": _plain(v) for k, v in state.items()}


def section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix.`, with the prefix removed."""
    start = prefix + "."
    return {k[len(start) :]: v for k, v in tensors.items() if k.startswith(start)}


def optimizer_to_tensors(prefix: str, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors and a JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{index}.{key}"] = _plain(value)
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in section(tensors, f"{prefix}.state").items():
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = value
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def write_checkpoint(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Serialise and write atomically; JSON-encode non-string metadata values."""
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), **encode_metadata(metadata)}
    payload = save(tensors, metadata=meta)
    try:
        atomic_write(path, payload)
    except OSError as e:
        raise CheckpointError(f"could not write checkpoint {str(path)!r}: {e.strerror or e}", _write_hint(e)) from e


def encode_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    """safetensors metadata is string -> string: JSON-encode every value that is not a string already."""
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in metadata.items()}


def _write_hint(error: OSError) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some disk space; the previous checkpoint is intact"
    if error.errno == errno.ENOENT:
        return "check that the folder exists"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "check that the folder is writable"
    return "nothing was replaced; the previous file is intact"


# -- reading ------------------------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A checkpoint read from disk (tensors on the CPU)."""

    path: Path
    kind: str
    step: int
    config: RunConfig
    data: DataInfo
    components: dict[str, Any]
    meta: dict[str, str]
    tensors: dict[str, torch.Tensor]

    def json(self, key: str, default: Any = None) -> Any:
        return json.loads(self.meta[key]) if key in self.meta else default

    def section(self, prefix: str) -> dict[str, torch.Tensor]:
        return section(self.tensors, prefix)

    def non_finite(self, prefixes: tuple[str, ...] = STATE_PREFIXES) -> str | None:
        """The name of the first floating-point tensor under `prefixes` holding NaN or infinity, or None."""
        for name, tensor in self.tensors.items():
            if name.startswith(prefixes) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return name
        return None

    def generator_state(self, prefer_ema: bool = True) -> dict[str, torch.Tensor]:
        """The generator's weights: the EMA copy when there is one and it is preferred."""
        ema = self.section("ema.module")
        return ema if prefer_ema and ema else self.section("generator")

    def summary(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "step": self.step,
            "arch": self.config.arch.to_json(),
            "loss": self.config.loss.to_json(),
            "cond": self.config.cond.to_json(),
            "controllers": [c.to_json() for c in self.config.controllers],
            "data": self.data.to_json(),
            "latent_dim": self.config.latent_dim,
            "ema": bool(self.section("ema.module")),
            "components": self.components,
            "gantoolkit_version": self.meta.get("gantoolkit_version"),
            "created": self.meta.get("created"),
        }


def sniff_safetensors(path: Path, what: str = "checkpoint", hint: str | None = None) -> None:
    """Reject a file that is plainly not safetensors (missing, a directory, empty, a pickle, a zip) before any
    parser sees it. A safetensors file starts with its header's length (8 bytes, little-endian) and then "{"; that
    length's low bytes can equal a pickle's magic number (a 640-byte header starts 80 02), so the layout is
    checked first."""
    hint = hint or f"only gantoolkit safetensors {what}s can be used"
    try:
        with open_regular(path) as fh:  # a FIFO or a device is refused, never read (nothing blocks)
            head = fh.read(PICKLE_SNIFF)
            size = os.fstat(fh.fileno()).st_size
    except IsADirectoryError:
        raise CheckpointError(f"{str(path)!r} is a directory, not a {what}", hint) from None
    except FileNotFoundError as e:
        if os.path.islink(path):
            raise CheckpointError(f"cannot read {what} {str(path)!r}: {e.strerror}", hint) from None
        raise CheckpointError(f"{what} {str(path)!r} does not exist", hint) from None
    except OSError as e:
        raise CheckpointError(f"cannot read {what} {str(path)!r}: {e.strerror}", hint) from None
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return
    protocol = pickle_protocol(head)
    if protocol is not None:
        raise CheckpointError(f"{str(path)!r} is a pickle file (protocol {protocol}); gantoolkit never unpickles "
                              "files", hint)
    if head.startswith(_ZIP_MAGIC):
        raise CheckpointError(
            f"{str(path)!r} is a zip archive (torch.save or .npz), not a {what}; gantoolkit never unpickles files",
            hint,
        )
    if len(head) < 9:
        raise CheckpointError(f"{str(path)!r} is empty or truncated, not a {what}", hint)


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a gantoolkit safetensors file, checked; tensors are not read."""
    path = Path(path)
    sniff_safetensors(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{str(path)!r} is not a safetensors checkpoint, or is truncated ({e})",
            "give a .safetensors file written by gantool",
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is a safetensors file but not a gantoolkit checkpoint (no gantoolkit metadata)",
            "use a checkpoint written by `gantool train` or `gantool export`",
        )
    try:
        version = int(meta.get("format_version", "0"))
    except ValueError:
        version = -1
    if not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format {meta.get('format_version')!r}; "
            f"this gantoolkit reads 1..{FORMAT_VERSION}",
            "upgrade gantoolkit",
        )
    return meta


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and validate a checkpoint file (see `runs.resolve_checkpoint` for run directories)."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r} is truncated or corrupt ({e})", "use an earlier checkpoint") from None
    try:
        config = RunConfig.from_json(json.loads(meta["config"]))
        data = DataInfo.from_json(json.loads(meta["data"]))
        components = json.loads(meta.get("components", "{}"))
        step = int(meta.get("step", "0"))
        _check_description(meta.get("kind", TRAINING), step, data, components, config)
    except (KeyError, ValueError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{str(path)!r} has damaged metadata ({e})", "use an earlier checkpoint") from None
    return Checkpoint(path, meta.get("kind", TRAINING), step, config, data, components, meta, tensors)


def _check_description(kind: str, step: int, data: DataInfo, components: Any, config: RunConfig) -> None:
    """The parts of the metadata every command relies on, beyond being valid JSON, and sizes bounded so that nothing
    a file claims is allocated before its tensors are compared with it (ValueError otherwise)."""
    if kind not in (TRAINING, GENERATOR_ONLY):
        raise ValueError(f"unknown kind {kind!r}")
    if step < 0:
        raise ValueError(f"negative step {step}")
    if not isinstance(components, dict):
        raise ValueError("components is not a table")
    if data.modality not in (IMAGE, VECTOR) or not data.shape or min(data.shape) < 1:
        raise ValueError(f"no {data.modality!r} data has the shape {list(data.shape)}")
    if data.num_classes < 0 or (data.class_names and len(data.class_names) != data.num_classes):
        raise ValueError(f"{data.num_classes} classes with {len(data.class_names)} class names")
    check_shape_bounds(data)
    if not 1 <= config.latent_dim <= MAX_LATENT_DIM:
        raise ValueError(f"a latent size of {config.latent_dim:,} (at most {MAX_LATENT_DIM:,})")


def build_error(ckpt: Checkpoint, error: GanToolkitError) -> GanToolkitError:
    """A failure to build a checkpoint's models, said as what the file claims: models too large for this machine
    (see gantoolkit.training.sizing), or a component that is not installed (`missing_plugin_error`)."""
    from gantoolkit.training.sizing import ModelTooLargeError

    if isinstance(error, ModelTooLargeError):
        return CheckpointError(f"{str(ckpt.path)!r} describes models this machine cannot hold: its {error.message}",
                               "the file is damaged, or was made on a machine with more memory")
    return missing_plugin_error(ckpt, error)


def missing_plugin_error(ckpt: Checkpoint, error: GanToolkitError) -> GanToolkitError:
    """Turn "unknown component" into "this checkpoint says it was made with plugin X (pip install X)". The name is
    the file's claim, so it is offered only when it is a valid distribution name (PEP 508) and a plain version, and
    the message says where it came from."""
    if not isinstance(error, UnknownComponentError):
        return error
    for key, info in ckpt.components.items():
        name = info.get("name") if isinstance(info, dict) else None
        if name and f"{name!r}" in error.message:
            dist, version = info.get("distribution"), info.get("version")
            what = key.split(":")[0]
            if _is_distribution_name(dist) and (version is None or _is_version(version)):
                release = f"{dist} {version}" if version else dist
                claim = f"{str(ckpt.path)!r} needs {what} {name!r}; the checkpoint says it was made with the plugin " \
                        f"distribution {release}"
                if _is_installed(dist):
                    return CheckpointError(
                        f"{claim}, which is installed but was not loaded",
                        "see `gantool plugins` for its load error, or unset GANTOOL_DISABLE_PLUGINS / "
                        "GANTOOL_DISABLE_PLUGIN_AUTOLOAD",
                    )
                return CheckpointError(f"{claim}, which is not installed",
                                       f"if you trust the file and that distribution: pip install {dist}")
    return CheckpointError(f"{str(ckpt.path)!r} needs a component that is not installed: {error.message}")


def _is_installed(distribution: str) -> bool:
    """Whether a distribution of this name is installed (then a missing component means it was not loaded)."""
    from importlib import metadata

    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def _is_distribution_name(text: Any) -> bool:
    """A valid distribution name (PEP 508: letters, digits and . _ -, starting and ending with a letter or digit)."""
    return isinstance(text, str) and len(text) <= 100 and bool(_DISTRIBUTION.fullmatch(text))


def _is_version(text: Any) -> bool:
    """A plain version string (PEP 440's characters: letters, digits, . + ! -, at most 64 of them)."""
    return isinstance(text, str) and bool(_VERSION.fullmatch(text))


_DISTRIBUTION = re.compile(r"[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}")


# -- other self-describing files (classifiers, directions) -------------------------------------------------------


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
