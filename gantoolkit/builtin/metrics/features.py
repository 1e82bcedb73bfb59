"""Feature spaces for fd, kid and the manifold metrics, all offline.

`--features` takes:
- `auto` (default): the data itself for vectors; for labelled images a classifier trained on them, made once and
  cached (key: data source, shape, classes and a hash of the data); unlabelled images have no automatic features.
- `raw`: the data itself, flattened (pixels in [-1, 1] for images).
- `classifier`: force the automatic classifier; `classifier:PATH`: a classifier saved by gantoolkit.
- `inception:PATH`: torchvision's Inception-v3 (2,048 pool features) from a local weights file
  (`.safetensors`, or torchvision's `.pth` read with `weights_only=True`). Scores in this space are comparable
  with each other, not with published FIDs, which use the TensorFlow port of Inception.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gantoolkit.data import Dataset
from gantoolkit.errors import ConfigError
from gantoolkit.evaluation import EvalContext, MetricError

if TYPE_CHECKING:
    from gantoolkit.classifiers import Classifier

KINDS = ("auto", "raw", "classifier", "inception")
FEATURE_BATCH = 500
#: bump when the automatic classifier's recipe changes, so stale cache entries are not used
AUTO_CLASSIFIER_VERSION = 1


@dataclass(frozen=True)
class FeatureSpec:
    kind: str
    path: Path | None = None

    def describe(self) -> str:
        return f"{self.kind}:{self.path}" if self.path else self.kind


def parse_features(text: str) -> FeatureSpec:
    """`auto`, `raw`, `classifier[:PATH]` or `inception:PATH`, checked (paths must exist)."""
    kind, sep, rest = text.strip().partition(":")
    if kind not in KINDS:
        raise ConfigError(f"unknown --features {text!r}", "use auto, raw, classifier[:PATH] or inception:PATH")
    if kind in ("auto", "raw") and sep:
        raise ConfigError(f"--features {kind} takes no path, got {text!r}")
    if kind == "inception" and not rest:
        raise ConfigError("--features inception needs a local weights file", "use inception:PATH (no downloads)")
    path = Path(rest).expanduser() if rest else None
    if path is not None and not path.is_file():
        raise ConfigError(f"--features {kind}: {str(path)!r} is not a file", "give the path of a local weights file")
    return FeatureSpec(kind, path)


class FeatureExtractor(nn.Module):
    """Model-space batch -> B×`num_features` features (what torchmetrics' custom `feature=` modules provide)."""

    num_features: int
    description: str

    @torch.no_grad()
    def extract(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Features of many examples, in batches, on the CPU."""
        out = [self(x[i:i + FEATURE_BATCH].to(device)).float().cpu() for i in range(0, len(x), FEATURE_BATCH)]
        return torch.cat(out)


class RawFeatures(FeatureExtractor):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.num_features = int(torch.Size(shape).numel())
        self.description = "raw (the data itself)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().flatten(1)


class ClassifierFeatures(FeatureExtractor):
    """The penultimate features of a gantoolkit classifier (`gantoolkit.classifiers`)."""

    def __init__(self, classifier: Classifier, description: str) -> None:
        super().__init__()
        self.classifier: Classifier = classifier.eval()
        self.num_features = int(classifier.feature_dim)
        self.description = description

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x).float().flatten(1)


class InceptionFeatures(FeatureExtractor):
    """torchvision Inception-v3 pool features (2,048) from a local weights file; grey images are repeated to RGB."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=True, transform_input=False, init_weights=False)
        state = read_weights(path)
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise ConfigError(f"{str(path)!r} does not hold torchvision Inception-v3 weights ({first})",
                              "use the inception_v3 ImageNet weights file from torchvision") from None
        net.fc = nn.Identity()
        self.net = net.eval()
        self.num_features = 2048
        self.description = f"inception:{path}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = nn.functional.interpolate(x.float(), size=(299, 299), mode="bilinear", align_corners=False)
        return self.net(x)  # the Google weights take [-1, 1], which is model space


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from `.safetensors`, or from a torch file read with `weights_only=True` (never unpickled); a regular
    file only (a FIFO or a device is refused before it is read)."""
    from gantoolkit.files.reading import check_regular

    try:
        check_regular(path)
    except OSError as e:
        raise ConfigError(f"cannot read weights from {str(path)!r}: {e.strerror or e}") from None
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise ConfigError(f"cannot read weights from {str(path)!r}: it is not a safetensors file ({e})",
                              "give a .safetensors file or a plain state-dict .pth") from None
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing a file
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = "it holds more than tensors" if "Weights only load failed" in str(e) else str(e).splitlines()[0]
        raise ConfigError(f"cannot read weights from {str(path)!r}: {reason} (gantoolkit never unpickles)",
                          "give a .safetensors file or a plain state-dict .pth") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{str(path)!r} is not a state dict")
    return state


def why_no_features(ctx: EvalContext) -> str | None:
    """None when `ctx.features` gives a feature space for this data; otherwise how to get one."""
    spec = parse_features(ctx.features)
    info = ctx.info
    if spec.kind in ("auto", "classifier") and spec.path is None and info.is_image and not info.labelled:
        return ("unlabelled images have no automatic feature space; pass --features classifier:PATH or "
                "inception:PATH (or raw, for pixel distances)")
    if spec.kind == "inception" and not info.is_image:
        return "Inception features need images; use --features raw for vectors"
    return None


def feature_extractor(ctx: EvalContext) -> FeatureExtractor:
    """The feature space `ctx.features` names (built once per context)."""

    def make() -> FeatureExtractor:
        spec = parse_features(ctx.features)
        info = ctx.info
        if spec.kind == "raw" or (spec.kind == "auto" and not info.is_image):
            extractor: FeatureExtractor = RawFeatures(info.shape)
        elif spec.kind == "inception":
            assert spec.path is not None
            extractor = InceptionFeatures(spec.path)
        else:
            model = classifier(ctx)
            extractor = ClassifierFeatures(model, f"classifier features, {ctx.notes.get('classifier', 'classifier')}")
        ctx.notes["features"] = extractor.description
        return extractor.to(ctx.device).eval()

    return ctx.memo("features", make)


def features_of(ctx: EvalContext, which: str) -> torch.Tensor:
    """Features of the generated samples (`fake`) or of the real subset (`real`), computed once."""

    def make() -> torch.Tensor:
        x = ctx.fake()[0] if which == "fake" else ctx.real_subset()[0]
        return feature_extractor(ctx).extract(x, ctx.device)

    return ctx.memo(f"features:{which}", make)


# -- the classifier behind features, class coverage and conditional accuracy ----------------------------------------


def classifier(ctx: EvalContext) -> Classifier:
    """`classifier:PATH` when given, otherwise the automatic classifier of the data (trained once, cached)."""

    def make() -> Classifier:
        from gantoolkit.classifiers import load_classifier

        spec = parse_features(ctx.features)
        if spec.kind == "classifier" and spec.path is not None:
            model = load_classifier(spec.path, str(ctx.device))
            ctx.notes["classifier"] = f"classifier:{spec.path}"
        else:
            model = auto_classifier(ctx.real, ctx.cache_root(), ctx.device, ctx.notes)
        check_classifier(model, ctx)
        return model.eval()

    return ctx.memo("classifier", make)


def check_classifier(model: Classifier, ctx: EvalContext) -> None:
    channels = int(model.info.input_shape[0])
    if channels != ctx.info.shape[0] or model.num_classes < 1:
        raise MetricError(f"the classifier takes {channels}-channel images but the data has {ctx.info.shape[0]}",
                          "use a classifier trained on this data")
    model.check_shape(tuple(ctx.info.shape), "the data is", "use a classifier trained on this data")
    if ctx.info.labelled and model.num_classes != ctx.info.num_classes:
        raise MetricError(f"the classifier knows {model.num_classes} classes but the data has "
                          f"{ctx.info.num_classes}", "use a classifier trained on this data")


def why_no_classifier(ctx: EvalContext) -> str | None:
    spec = parse_features(ctx.features)
    if not ctx.info.is_image:
        return "it needs images"
    if spec.kind == "classifier" and spec.path is not None:
        return None
    if not ctx.info.labelled:
        return "it needs a classifier: labelled data (one is trained automatically), or --features classifier:PATH"
    return None


def cache_key(dataset: Dataset) -> str:
    """Data source, shape, classes and a hash of the examples and labels."""
    digest = hashlib.sha256()
    info = dataset.info
    head: dict[str, Any] = {"source": info.source, "shape": list(info.shape), "classes": list(info.class_names),
                            "num_classes": info.num_classes, "n": len(dataset), "version": AUTO_CLASSIFIER_VERSION}
    digest.update(json.dumps(head, sort_keys=True).encode())
    digest.update(dataset.data.contiguous().cpu().numpy().tobytes())
    if dataset.labels is not None:
        digest.update(dataset.labels.contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:24]


def auto_classifier(dataset: Dataset, cache_root: Path, device: torch.device, notes: dict[str, Any]) -> Classifier:
    """The data's automatic classifier: read from the cache, or trained (RNG-neutral) and cached atomically."""
    from gantoolkit.classifiers import load_classifier, save_classifier, train_classifier

    path = Path(cache_root) / "classifiers" / f"{cache_key(dataset)}.safetensors"
    if path.is_file():
        notes["classifier"] = f"automatic (cached {path})"
        return load_classifier(path, str(device))
    # training the classifier leaves the caller's random streams alone, and works inside no_grad (e.g. tracking)
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        model, accuracy = train_classifier(dataset, seed=0, device=str(device))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_classifier(path, model)  # atomic
    notes["classifier"] = f"automatic (held-out accuracy {accuracy:.3f}, cached {path})"
    return model.to(device)
