"""`gantool export --format onnx|torchscript`: a generator as a graph that runs without gantoolkit, checked at once.

The graph's inputs are the ones the generator takes: `z` (float32 N×latent size), `labels` (int64 N, conditional
models) and `codes` (float32 N×code size, models with controller codes), with a dynamic batch axis; its output
`samples` is what the generator makes in model space (images in [-1, 1], N×C×H×W; or vectors). ONNX goes through
torch.onnx.export's TorchScript-based exporter (`dynamo=False`): the torch.export-based one, torch's default since
2.9, needs the onnxscript package besides onnx. Every export is run again before it is written (ONNX Runtime, or
torch.jit.load for TorchScript) on batches of other sizes than the traced one, and refused when it differs from
PyTorch by more than `TOLERANCE`.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from gantoolkit import __version__
from gantoolkit.errors import ConfigError
from gantoolkit.files.outputs import GENERATOR, mark_zip
from gantoolkit.sampling.generator import LoadedGenerator

#: the ai.onnx opset of every ONNX export (ONNX Runtime 1.14 and later run it)
OPSET = 17
#: the largest |difference| allowed between an export's output and PyTorch's, in model space ([-1, 1] for images)
TOLERANCE = 1e-4
#: the batch the graph is traced with, and the batches it is checked on (others: the batch axis is dynamic)
TRACE_BATCH, CHECK_BATCHES = 2, (1, 5)
EXPORTER = "torch.onnx.export(dynamo=False), the TorchScript-based exporter"
EXTRA = "pip install 'gantoolkit[export]'"
#: the file inside a TorchScript archive that holds the metadata (torch.jit.load(f, _extra_files=...))
TORCHSCRIPT_META = "gantoolkit.json"


class GraphGenerator(nn.Module):
    """The generator with exactly the inputs it takes, positionally: z[, labels][, codes]."""

    def __init__(self, generator: nn.Module, takes_labels: bool, takes_codes: bool) -> None:
        super().__init__()
        self.generator = generator
        self.takes_labels = takes_labels
        self.takes_codes = takes_codes

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        z, rest = inputs[0], list(inputs[1:])
        labels = rest.pop(0) if self.takes_labels else None
        codes = rest.pop(0) if self.takes_codes else None
        return self.generator(z, labels, codes)


@dataclass
class Exported:
    """An export's bytes, checked, and the line that says how well it matched PyTorch."""

    payload: bytes
    report: str


def input_names(model: LoadedGenerator) -> list[str]:
    return ["z", *(["labels"] if model.conditional else []), *(["codes"] if model.generator.code_dim else [])]


def graph_module(model: LoadedGenerator) -> GraphGenerator:
    return GraphGenerator(model.generator, model.conditional, bool(model.generator.code_dim)).eval()


def example_inputs(model: LoadedGenerator, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Inputs for n samples, as `gantool sample --seed` draws them."""
    names = input_names(model)
    values = {"z": model.latents(n, seed), "labels": model.labels(n), "codes": model.codes(n, seed)}
    return tuple(values[name] for name in names)  # type: ignore[misc]


def metadata(model: LoadedGenerator, fmt: str, extra: dict[str, object] | None = None) -> dict[str, str]:
    """What a program needs to drive the graph (all values strings, as ONNX's metadata_props)."""
    data, config = model.data, model.models.config
    meta: dict[str, object] = {
        "format": GENERATOR, "export_format": fmt, "gantoolkit_version": __version__,
        "torch_version": torch.__version__, "inputs": ",".join(input_names(model)), "output": "samples",
        "latent_dim": model.latent_dim, "code_dim": int(model.generator.code_dim or 0),
        "num_classes": data.num_classes if model.conditional else 0,
        "classes": json.dumps(list(model.class_names) if model.conditional else []),
        "modality": data.modality, "sample_shape": json.dumps(list(data.shape)),
        "value_range": "[-1, 1]" if data.is_image else "none (vectors)",
        "latent_distribution": "N(0, I), float32", "architecture": config.arch.name,
        "conditioning": config.cond.name, "loss": config.loss.name, "step": model.checkpoint.step,
        "tolerance": TOLERANCE, **(extra or {}),
    }
    return {k: str(v) for k, v in meta.items()}


def require_onnx() -> None:
    """Refuse in one line, naming the extra, when onnx or onnxruntime is missing."""
    for name in ("onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            raise ConfigError(f"--format onnx needs the {name} package, which is not installed", EXTRA) from None


def _traced(model: LoadedGenerator, fmt: str, make: Callable[[], bytes]) -> bytes:
    """`make()`, with a failure to trace the generator as one line naming its components."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's deprecation and tracer notes; the check below decides
            return make()
    except Exception as e:
        raise _failure(model, fmt, "cannot be traced", e) from None


def _failure(model: LoadedGenerator, fmt: str, what: str, error: Exception) -> ConfigError:
    """One line naming the generator's components, what failed and the first line of why."""
    config = model.models.config
    detail = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    detail = detail if len(detail) <= 200 else detail[:197] + "..."
    return ConfigError(f"the {fmt} export of architecture {config.arch.name!r} with conditioning "
                       f"{config.cond.name!r} {what}: {type(error).__name__}: {detail}",
                       "export --format safetensors instead (it needs no tracing)")


def _check(fmt: str, runner: str, run: Callable[[tuple[torch.Tensor, ...]], torch.Tensor],
           model: LoadedGenerator) -> str:
    """Run the export on fresh inputs of the check batches; refuse it beyond the tolerance."""
    module, worst = graph_module(model), 0.0
    for i, n in enumerate(CHECK_BATCHES):
        inputs = example_inputs(model, n, seed=1000 + i)
        with torch.no_grad():
            expected = module(*inputs).float()
        try:
            got = run(inputs).float()
        except Exception as e:  # e.g. a batch size the tracer baked into the graph
            raise _failure(model, fmt, f"fails on a batch of {n} (it was traced with {TRACE_BATCH})", e) from None
        if got.shape != expected.shape:
            raise ConfigError(f"the {fmt} export makes {list(got.shape)} for a batch of {n}, PyTorch "
                              f"{list(expected.shape)}", "export --format safetensors instead")
        worst = max(worst, float((got - expected).abs().max()))
    if not worst <= TOLERANCE:  # also refuses NaN
        raise ConfigError(f"the {fmt} export differs from PyTorch by up to {worst:.3g}, more than the tolerance "
                          f"{TOLERANCE:g}; nothing was written", "export --format safetensors instead")
    batches = ", ".join(map(str, CHECK_BATCHES))
    return f"checked with {runner} on batches of {batches}: max |difference| {worst:.3g} (tolerance {TOLERANCE:g})"


def export_onnx(model: LoadedGenerator, opset: int = OPSET) -> Exported:
    """The generator as an ONNX model (metadata in metadata_props, producer `gantoolkit`), checked with ONNX
    Runtime."""
    require_onnx()
    import onnx
    import onnxruntime

    module, names = graph_module(model), input_names(model)

    def make() -> bytes:
        buffer = io.BytesIO()
        torch.onnx.export(module, example_inputs(model, TRACE_BATCH, 0), buffer,  # type: ignore[arg-type]
                          dynamo=False, opset_version=opset,  # the TorchScript-based exporter writes to file objects
                          input_names=names, output_names=["samples"],
                          dynamic_axes={name: {0: "batch"} for name in [*names, "samples"]})
        return buffer.getvalue()

    proto = onnx.load_from_string(_traced(model, "ONNX", make))
    proto.producer_name, proto.producer_version = "gantoolkit", __version__  # how a later --out recognises it
    meta = metadata(model, "onnx", {"opset": opset, "exporter": EXPORTER})
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    payload = proto.SerializeToString()
    session = onnxruntime.InferenceSession(payload, providers=["CPUExecutionProvider"])

    def run(inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        feed = {name: value.numpy() for name, value in zip(names, inputs, strict=True)}
        return torch.from_numpy(session.run(None, feed)[0])

    report = _check("ONNX", f"ONNX Runtime {onnxruntime.__version__}", run, model)
    return Exported(payload, f"opset {opset}, {EXPORTER}; {report}")


def export_torchscript(model: LoadedGenerator) -> Exported:
    """The generator traced to TorchScript (metadata in the archive's gantoolkit.json), checked by reloading."""
    module = graph_module(model)
    meta = metadata(model, "torchscript", {"exporter": "torch.jit.trace"})

    def make() -> bytes:
        traced = torch.jit.trace(module, example_inputs(model, TRACE_BATCH, 0), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_META: json.dumps(meta, sort_keys=True)})
        return buffer.getvalue()

    payload = mark_zip(_traced(model, "TorchScript", make), "torchscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(io.BytesIO(payload), map_location="cpu")

    def run(inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        with torch.no_grad():
            return loaded(*inputs)

    report = _check("TorchScript", "torch.jit.load", run, model)
    return Exported(payload, f"torch.jit.trace; {report}")
