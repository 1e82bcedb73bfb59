"""Evaluation: the Metric contract, the context metrics read from, and the orchestration behind `gantool evaluate`.

A metric is a registered component (`register_metrics`) whose factory builds a `Metric`. The core never names one:
it asks each metric whether it applies to the data and the model (`why_not`), and calls `compute` with an
`EvalContext` that generates samples, holds the real data and memoises what several metrics share (features,
distances). The same context drives coverage tracking during training (`Tracker`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gantoolkit.batching import in_chunks
from gantoolkit.components import Metric
from gantoolkit.data import DataInfo, Dataset, to_model_space
from gantoolkit.errors import ConfigError, GanToolkitError, did_you_mean
from gantoolkit.files.outputs import REPORT, REPORT_FORMAT, Output, kind_for_suffix
from gantoolkit.registry import Registry, get_registry

#: samples drawn by default: the mixture protocol's 2,500 for 2-D vectors, 10,000 (the FID convention) otherwise
DEFAULT_VECTOR_SAMPLES = 2_500
DEFAULT_IMAGE_SAMPLES = 10_000

#: (n, seed) -> model-space samples and the labels they were asked for (None when unconditional)
Sampler = Callable[[int, int], tuple[torch.Tensor, "torch.Tensor | None"]]


class MetricError(GanToolkitError):
    """A metric cannot be computed on this data or model."""


@dataclass
class EvalContext:
    """What a metric may read: the real data, a sampler for the model, and shared memoised values."""

    real: Dataset
    sample: Sampler
    conditional: bool = False
    n: int = DEFAULT_IMAGE_SAMPLES
    seed: int = 0
    features: str = "auto"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    artefact_stem: Path | None = None
    cache_dir: Path | None = None
    artefacts: dict[str, str] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    #: what the command's --force and inputs say about replacing an existing artefact (see gantoolkit.files.outputs)
    force: bool = False
    inputs: tuple[Path, ...] = ()
    _memo: dict[str, Any] = field(default_factory=dict)

    @property
    def info(self) -> DataInfo:
        return self.real.info

    def memo(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()` once per context; later calls return the same value (features, distances, ...)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def fake(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`n` model-space samples (CPU) and the labels asked for, drawn once."""
        return self.memo("fake", lambda: self.sample(self.n, self.seed))

    def real_subset(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Up to `n` (default: the context's n) real examples in model space, a seeded random subset."""
        n = min(n or self.n, len(self.real))

        def draw() -> tuple[torch.Tensor, torch.Tensor | None]:
            rng = torch.Generator().manual_seed(self.seed + 7)
            index = torch.randperm(len(self.real), generator=rng)[:n]
            labels = self.real.labels[index] if self.real.labels is not None else None
            return to_model_space(self.real.data[index], self.info), labels

        return self.memo(f"real:{n}", draw)

    def artefact(self, name: str, suffix: str) -> Path | None:
        """Where a metric may write an artefact (`REPORT.NAME.SUFFIX`), or None when no report is written. The path
        is checked like any output: an existing file is replaced only when gantool wrote it as the same kind (a
        .png, .gif, .npz or .json), or with --force."""
        if self.artefact_stem is None:
            return None
        output = artefact_output(self.artefact_stem, name, suffix, self.force, self.inputs).check()
        self.artefacts[name] = str(output.path)
        return output.path

    def cache_root(self) -> Path:
        """Where derived models (e.g. an automatic feature classifier) are cached: $GANTOOL_CACHE or ~/.cache."""
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        env = os.environ.get("GANTOOL_CACHE")
        return Path(env).expanduser() if env else Path.home() / ".cache" / "gantoolkit"


def artefact_output(stem: Path, name: str, suffix: str, force: bool, inputs: tuple[Path, ...]) -> Output:
    """The output `STEM.NAME.SUFFIX` of an artefact (a suffix gantool does not mark is never replaced unforced)."""
    path = stem.with_name(f"{stem.name}.{name}{suffix}")
    return Output(path, kind_for_suffix(path) or f"unmarked{suffix}", force, inputs)


def create_metrics(names: list[str] | None, registry: Registry | None = None) -> dict[str, Metric]:
    """Metrics by name (every registered one when `names` is None), checked against the contract."""
    registry = registry or get_registry()
    known = registry.names("metric")
    if names is None:
        names = known
    out: dict[str, Metric] = {}
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown metric {name!r}", did_you_mean(name, known))
        metric = registry.create("metric", name)
        if not isinstance(metric, Metric):
            raise ConfigError(f"metric {name!r} built a {type(metric).__name__}, not a gantoolkit Metric",
                              "its plugin breaks the contract")
        out[name] = metric
    return out


def parse_metric_list(text: str | None) -> list[str] | None:
    """"fd,kid" -> ["fd", "kid"]; None or "" -> None (every metric that applies). `cond_acc` means `cond-acc`
    (registered names use hyphens; report keys use underscores)."""
    if text is None or not text.strip():
        return None
    names = [n.strip().replace("_", "-") for n in text.split(",") if n.strip()]
    return list(dict.fromkeys(names))


def run_metrics(ctx: EvalContext, metrics: dict[str, Metric], explicit: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Compute every metric; one that does not apply is an error when asked for by name, else skipped."""
    skipped: dict[str, str] = {}
    runnable: dict[str, Metric] = {}
    for name, metric in metrics.items():
        reason = metric.why_not(ctx)
        if reason is None:
            runnable[name] = metric
        elif explicit:
            raise MetricError(f"metric {name!r} does not apply: {reason}")
        else:
            skipped[name] = reason
    values: dict[str, Any] = {}
    for metric in runnable.values():
        for key, value in metric.compute(ctx).items():
            values[key] = clean_number(value)
    return values, skipped


def clean_number(value: Any) -> float | int | None:
    """A JSON-safe number: ints stay ints, floats are rounded to 6 significant digits, nan/inf become None."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, (bool, int)):
        return int(value)
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


class Tracker:
    """Metrics computed on the current generator every few training steps (e.g. mode coverage).

    Samples come from fixed latents drawn from their own seeded generator, so tracking never changes the
    training's random streams: a tracked run trains exactly like an untracked one.
    """

    def __init__(self, names: list[str], dataset: Dataset, conditional: bool, n: int, seed: int,
                 device: torch.device) -> None:
        self.metrics = create_metrics([name.replace("_", "-") for name in names])
        self.dataset, self.conditional, self.n, self.seed, self.device = dataset, conditional, n, seed, device
        probe = EvalContext(dataset, _no_sampler, conditional, n, seed, device=device)
        for name, metric in self.metrics.items():
            reason = metric.why_not(probe)
            if reason is not None:
                raise ConfigError(f"--track {name}: {reason}", "track a metric that applies to this data")

    @torch.no_grad()
    def measure(self, generator: torch.nn.Module, sample_inputs: Callable[[int, torch.Generator], tuple]) -> dict:
        """The tracked values for `generator` (switched to eval mode for the call)."""
        was_training = generator.training
        generator.eval()
        try:
            def sample(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
                inputs = sample_inputs(n, torch.Generator().manual_seed(seed))
                return in_chunks(lambda *part: generator(*part).float(), inputs, 1024, self.device), inputs[1]

            ctx = EvalContext(self.dataset, sample, self.conditional, self.n, self.seed, device=self.device)
            values, _ = run_metrics(ctx, self.metrics, explicit=True)
        finally:
            generator.train(was_training)
        return {k: v for k, v in values.items() if v is not None}  # an undefined value is left out of the log


def _no_sampler(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    raise RuntimeError("this context only answers why_not")


# -- evaluating a checkpoint ----------------------------------------------------------------------------------------


def load_matching_data(model: Any, data: str | None, data_root: str | None = None) -> Dataset:
    """The dataset named by `data` (default: the one the model was trained on, unless its checkpoint names a path:
    a path is read only when the command line gives it), at the model's size, checked."""
    from gantoolkit.config import apply_layer
    from gantoolkit.data.loading import load_dataset, refuse_saved_path
    from gantoolkit.errors import DataError

    if data is None:
        refuse_saved_path(model.models.config.data, get_registry(), "name the data on the command line:")
    trained = model.data
    layer: dict[str, Any] = {"data": data or model.models.config.data.to_json()}
    if trained.is_image:
        layer["image_size"] = list(trained.shape[1:])  # height and width (one side when square)
    if data_root is not None:
        layer["data_root"] = data_root
    config = apply_layer(model.models.config, layer, "--data")
    dataset = load_dataset(config, get_registry())
    info = dataset.info
    hint = f"evaluate against the data the model was trained on: --data {trained.source}"
    if info.modality != trained.modality or tuple(info.shape) != tuple(trained.shape):
        raise DataError(f"the model makes {trained.modality} samples of shape {tuple(trained.shape)}, but "
                        f"{info.source} is {info.modality} data of shape {tuple(info.shape)}", hint)
    if model.conditional and info.num_classes != trained.num_classes:
        raise DataError(f"the model was trained on {trained.num_classes} classes, but {info.source} has "
                        f"{info.num_classes}", hint)
    return dataset


def evaluate_checkpoint(checkpoint: str | Path, data: str | None = None, metrics: list[str] | None = None,
                        n: int | None = None, features: str = "auto", out: Path | None = None, seed: int = 0,
                        device: str = "cpu", ema: bool = True, cache_dir: Path | None = None,
                        sampler: Callable[[Any], Sampler] | None = None, force: bool = False,
                        inputs: Iterable[Path | None] = ()) -> dict[str, Any]:
    """Score a checkpoint (or a run's newest) against `data`; writes `out` (JSON) when given. Returns the report.

    `sampler(model)` may replace plain sampling (e.g. rejection sampling); its `describe()` goes into the report.
    `out` and the metrics' artefacts beside it are checked before any work (`force`, and `inputs` besides the
    checkpoint that they must not be: see gantoolkit.files.outputs)."""
    import json
    import time

    from gantoolkit.files.runs import resolve_checkpoint
    from gantoolkit.sampling.generator import load_generator

    if n is not None and n < 2:
        raise ConfigError(f"--n must be at least 2, got {n}")
    if out is not None:
        out = Path(out)
        if out.suffix.lower() != ".json":
            raise ConfigError(f"--out {str(out)!r} must be a .json file")
    chosen = create_metrics(metrics)
    sources = tuple(Path(p) for p in (resolve_checkpoint(checkpoint), *inputs) if p is not None)
    report_out = Output(out, REPORT, force, sources).check() if out is not None else None
    stem = out.with_suffix("") if out is not None else None
    if stem is not None:
        for metric in chosen.values():
            for name, suffix in metric.artefacts:
                artefact_output(stem, name, suffix, force, sources).check()
    started = time.process_time()
    model = load_generator(checkpoint, device, prefer_ema=ema)
    dataset = load_matching_data(model, data)
    if n is None:  # the data's own protocol (stacked digits: 26,000), else the conventions
        n = int(dataset.info.extra.get("eval_samples")
                or (DEFAULT_IMAGE_SAMPLES if dataset.info.is_image else DEFAULT_VECTOR_SAMPLES))
    draw: Sampler = sampler(model) if sampler is not None else (lambda k, s: model.sample(k, s))
    ctx = EvalContext(dataset, draw, model.conditional, n, seed, features, model.device, stem, cache_dir,
                      force=force, inputs=sources)
    values, skipped = run_metrics(ctx, chosen, explicit=metrics is not None)
    meta = {
        "format": REPORT_FORMAT,
        "checkpoint": str(model.checkpoint.path),
        "step": model.checkpoint.step,
        "data": dataset.info.source,
        "trained_on": model.data.source,
        "n": n,
        "real": min(n, len(dataset)),
        "seed": seed,
        "ema": ema and bool(model.checkpoint.section("ema.module")),
        "sampler": draw.describe() if hasattr(draw, "describe") else "plain",
        "features": ctx.notes.get("features"),
        **{k: v for k, v in ctx.notes.items() if k != "features"},
        "artefacts": dict(ctx.artefacts),
        "skipped": skipped,
        "cpu_seconds": round(time.process_time() - started, 2),
    }
    report = {**values, "meta": meta}
    if report_out is not None:
        report_out.write((json.dumps(report, indent=2) + "\n").encode())
    return report
