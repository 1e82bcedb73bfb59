"""Image classifiers trained on a dataset's labels, with timm backbones.

They serve as the target of classifier-gradient editing and direction finding, and as a feature space for metrics
on data that Inception never saw. The API is small and stable:

    train_classifier(dataset, backbone="test_resnet", epochs=8, seed=0, ...) -> (Classifier, held_out_accuracy)
    save_classifier(path, clf)          safetensors weights + JSON metadata (never a pickle)
    load_classifier(path, device="cpu") -> Classifier   (eval mode, parameters frozen)

    clf.logits(x)    B×K class scores       x: model-space images B×C×H×W in [-1, 1] (`data.to_model_space`,
    clf.features(x)  B×F penultimate        or a generator's output); other sizes are resized to the
    clf.predict(x)   B class indices        classifier's input size, so gradients flow back to x (the commands
                                            refuse data of another shape: `clf.check_shape`)
    clf.info         ClassifierInfo: backbone and its kwargs, class names, input shape, normalisation,
                     held-out accuracy, data source

Backbones come from timm (`timm.create_model(name, pretrained=False, num_classes=K, in_chans=C)`). The default,
timm's `test_resnet` (0.37 M parameters, widths 32-96), is the smallest ResNet timm has: a 16×16 digits classifier
reaches ~99 % held-out accuracy in about 15 s on one CPU core. ImageNet ResNets shrink their input 32-fold, which
leaves nothing of an 8-64 px image, so the stem of a ResNet-family backbone is adapted to the image size: its
max-pool is dropped for sides up to 64, and the first convolution's stride is set to 1 for sides up to 16 (total
stride 8 instead of 32). Both changes leave every weight's shape intact, so pretrained weights still load. Other
backbones keep their stem and see inputs upsampled to at least 64 px. Pretrained weights are used only from a local
`.safetensors` file (`pretrained_file`, through timm's `pretrained_cfg_overlay=dict(file=...)`); nothing is ever
downloaded.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from gantoolkit.batching import in_chunks
from gantoolkit.config import MAX_ITERATIONS
from gantoolkit.data import MAX_CHANNELS, MAX_CLASSES, Dataset, to_model_space
from gantoolkit.errors import ConfigError, DataError, did_you_mean
from gantoolkit.files.outputs import Output

FORMAT = "gantoolkit-classifier"
FORMAT_VERSION = 1
DEFAULT_BACKBONE = "test_resnet"
#: inputs of backbones whose stem is not adapted are upsampled to at least this side
MIN_SIDE = 64
_HINT = "give a classifier written by `gantool classifier train`"


@dataclass
class ClassifierInfo:
    """Everything needed to rebuild a classifier and to know what it means (saved as JSON)."""

    backbone: str
    num_classes: int
    class_names: list[str]
    input_shape: list[int]
    mean: list[float]
    std: list[float]
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    stem_stride1: bool = False
    drop_maxpool: bool = False
    resize_to: int | None = None
    held_out_accuracy: float | None = None
    held_out_size: int = 0
    train_size: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ClassifierInfo:
        """The description read from a file, checked (ValueError naming what is wrong)."""
        if not isinstance(raw, dict):
            raise ValueError("not a table")
        known = {f for f in cls.__dataclass_fields__}
        info = cls(**{k: v for k, v in raw.items() if k in known})
        info.check()
        return info

    def check(self) -> None:
        """What rebuilding the network relies on: plain types, bounded sizes, one mean and std per channel,
        and only the timm options gantoolkit writes (ValueError otherwise)."""
        from gantoolkit.config import MAX_IMAGE_SIZE

        shape = self.input_shape
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ValueError("no backbone name")
        if not (isinstance(shape, list) and len(shape) == 3 and all(_int_in(v, 1, MAX_IMAGE_SIZE) for v in shape)
                and shape[0] <= MAX_CHANNELS):
            raise ValueError(f"input shape {shape!r} is not C×H×W with 1..{MAX_CHANNELS} channels and sides up to "
                             f"{MAX_IMAGE_SIZE}")
        if not _int_in(self.num_classes, 1, MAX_CLASSES):
            raise ValueError(f"{self.num_classes!r} classes (a classifier has 1 to {MAX_CLASSES})")
        if not isinstance(self.class_names, list) or len(self.class_names) != self.num_classes \
                or not all(isinstance(c, str) for c in self.class_names):
            raise ValueError(f"{self.num_classes} classes need as many class names")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if not (isinstance(values, list) and len(values) == shape[0]
                    and all(_number(v) and math.isfinite(v) for v in values)):
                raise ValueError(f"its normalisation {name} {values!r} is not one finite number per channel "
                                 f"({shape[0]})")
        if not all(v > 0 for v in self.std):
            raise ValueError(f"its normalisation std {self.std!r} is not positive")
        if not (isinstance(self.stem_stride1, bool) and isinstance(self.drop_maxpool, bool)):
            raise ValueError("its stem settings are not true/false")
        if self.resize_to is not None and not _int_in(self.resize_to, 1, MAX_IMAGE_SIZE):
            raise ValueError(f"resize_to {self.resize_to!r} is not a side in 1..{MAX_IMAGE_SIZE}")
        check_backbone_kwargs(self.backbone_kwargs)




def _unit(value: Any) -> bool:
    return _number(value) and 0 <= value < 1


#: the timm arguments a classifier may carry (`--backbone-opt KEY=VALUE`, saved in the file), with their checks:
#: numbers and switches that shape the network. Nothing else is passed to timm, from the command line or from a file,
#: so a classifier file never makes timm read a path it names (checkpoint_path, pretrained_cfg, ...).
BACKBONE_OPTIONS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "drop_rate": ("a number in [0, 1)", _unit),
    "drop_path_rate": ("a number in [0, 1)", _unit),
    "drop_block_rate": ("a number in [0, 1)", _unit),
    "global_pool": ("avg, max, avgmax or catavgmax", lambda v: v in ("avg", "max", "avgmax", "catavgmax")),
    "zero_init_last": ("true or false", lambda v: isinstance(v, bool)),
    "output_stride": ("8, 16 or 32", lambda v: _int_in(v, 8, 32) and v in (8, 16, 32)),
}


def check_backbone_kwargs(kwargs: Any) -> dict[str, Any]:
    """`kwargs` when every key is in BACKBONE_OPTIONS with a value it accepts; ValueError naming the first that is
    not."""
    if not isinstance(kwargs, dict):
        raise ValueError("its timm options are not a table")
    for key, value in kwargs.items():
        if key not in BACKBONE_OPTIONS:
            raise ValueError(f"timm option {key!r} is not one gantoolkit passes on (it takes "
                             f"{', '.join(sorted(BACKBONE_OPTIONS))})")
        what, accepts = BACKBONE_OPTIONS[key]
        if not accepts(value):
            raise ValueError(f"timm option {key}={value!r} must be {what}")
    return dict(kwargs)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


class Classifier(nn.Module):
    """A timm backbone behind the model-space input convention of gantoolkit (see the module docstring)."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, info: ClassifierInfo, net: nn.Module) -> None:
        super().__init__()
        self.info = info
        self.net: Any = net  # a timm backbone: forward_features(), forward_head(), num_features
        channels = info.input_shape[0]
        self.register_buffer("mean", torch.tensor(info.mean, dtype=torch.float32).view(1, channels, 1, 1))
        self.register_buffer("std", torch.tensor(info.std, dtype=torch.float32).view(1, channels, 1, 1))

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def class_names(self) -> list[str]:
        return list(self.info.class_names)

    @property
    def feature_dim(self) -> int:
        return int(self.net.num_features)

    def class_index(self, value: str | int) -> int:
        """A class given by name or by index, checked."""
        text = str(value).strip()
        if text in self.info.class_names:
            return self.info.class_names.index(text)
        try:
            index = int(text)
        except ValueError:
            hint = did_you_mean(text, self.info.class_names)
            raise ConfigError(f"the classifier has no class {text!r}", hint) from None
        if not 0 <= index < self.num_classes:
            hint = f"this classifier has classes 0..{self.num_classes - 1}"
            raise ConfigError(f"class {index} is out of range", hint)
        return index

    def check_shape(self, shape: tuple[int, ...], what: str, hint: str) -> None:
        """Refuse images of another shape than the classifier was trained on (`what` makes them, e.g. "the
        generator"): a classifier is never silently resized onto other data."""
        mine = tuple(self.info.input_shape)
        if tuple(shape) != mine:
            raise ConfigError(f"the classifier was trained on {'x'.join(map(str, mine))} images, but {what} "
                              f"{'x'.join(map(str, shape))}", hint)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Model-space images -> the backbone's normalised input (differentiable)."""
        channels, height, width = self.info.input_shape
        if x.dim() != 4 or x.shape[1] != channels:
            raise ConfigError(
                f"the classifier takes {channels}-channel images, got a tensor of shape {tuple(x.shape)}",
                "use a classifier trained on data like this generator's",
            )
        x = x.float()
        if tuple(x.shape[2:]) != (height, width):
            shrink = x.shape[2] > height
            x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=shrink)
        if self.info.resize_to:
            x = F.interpolate(x, size=(self.info.resize_to,) * 2, mode="bilinear", align_corners=False)
        return ((x + 1) / 2 - self.mean) / self.std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (globally pooled) features, B×F."""
        return self.net.forward_head(self.net.forward_features(self.prepare(x)), pre_logits=True)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Raw class scores, B×K."""
        return self.net(self.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Class indices (on the CPU) for model-space images."""
        return in_chunks(lambda part: self.logits(part).argmax(1), (x,), batch_size, self.mean.device)


# -- building -------------------------------------------------------------------------------------------------------


def _check_backbone(name: str) -> None:
    import timm

    if not timm.is_model(name):
        raise ConfigError(f"timm has no backbone {name!r}", did_you_mean(name, timm.list_models()))


def _first_conv(module: nn.Module) -> nn.Conv2d | None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return m
    return None


def _stem_plan(net: nn.Module, side: int) -> tuple[bool, bool, int | None]:
    """(first conv stride 1, drop max-pool, resize inputs to) for an image side (the shorter one)."""
    resnet_like = isinstance(getattr(net, "maxpool", None), nn.Module) and hasattr(net, "conv1")
    if resnet_like:
        return side <= 16, side <= 64, None
    return False, False, MIN_SIDE if side < MIN_SIDE else None


def build_network(info: ClassifierInfo, pretrained_file: str | Path | None = None) -> nn.Module:
    """The timm backbone `info` describes, its stem adapted as `info` says (weights random or pretrained)."""
    import timm
    from safetensors import SafetensorError

    _check_backbone(info.backbone)
    kwargs: dict[str, Any] = dict(info.backbone_kwargs)
    if pretrained_file is not None:
        kwargs["pretrained_cfg_overlay"] = {"file": str(pretrained_file)}
    try:
        net = timm.create_model(info.backbone, pretrained=pretrained_file is not None, num_classes=info.num_classes,
                                in_chans=info.input_shape[0], **kwargs)
    except (TypeError, ValueError, RuntimeError, KeyError, AssertionError, SafetensorError) as e:
        what = "load the pretrained weights of" if pretrained_file is not None else "build"
        raise ConfigError(f"timm cannot {what} backbone {info.backbone!r}: {str(e).splitlines()[0]}",
                          "check the backbone name, its kwargs and the weights file") from None
    if info.stem_stride1:
        conv = _first_conv(cast(nn.Module, net.conv1))
        if conv is not None:
            conv.stride = (1, 1)
    if info.drop_maxpool:
        net.maxpool = nn.Identity()
    return net


def _check_runs(net: nn.Module, info: ClassifierInfo) -> None:
    size = (info.resize_to,) * 2 if info.resize_to else tuple(info.input_shape[1:])
    probe = torch.zeros(2, info.input_shape[0], *size)
    try:
        with torch.no_grad():
            net.eval()(probe)
    except RuntimeError as e:
        raise ConfigError(
            f"backbone {info.backbone!r} cannot classify {'x'.join(map(str, info.input_shape))} images "
            f"({str(e).splitlines()[0]})", f"use a ResNet such as {DEFAULT_BACKBONE}, resnet10t or resnet18",
        ) from None


def _normalisation(backbone: str, channels: int, pretrained: bool) -> tuple[list[float], list[float]]:
    """Per-channel mean/std in [0, 1] units: the pretrained weights' when used, else 0.5 (model space as is)."""
    if not pretrained:
        return [0.5] * channels, [0.5] * channels
    import timm

    cfg = cast(dict[str, Any], timm.create_model(backbone, pretrained=False).pretrained_cfg)
    mean, std = list(cfg.get("mean", (0.5,) * 3)), list(cfg.get("std", (0.5,) * 3))
    if channels == len(mean):
        return mean, std
    return [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels


# -- training -------------------------------------------------------------------------------------------------------


def _split(n: int, held_out: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(n * held_out))
    return order[n_test:], order[:n_test]


def _shift(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random translation by up to 1/8 of the side (edges replicated): the one augmentation digits need."""
    pad = max(1, x.shape[-1] // 8)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=rng).tolist()
    return padded[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]


@torch.no_grad()
def accuracy(clf: Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of model-space `images` classified as `labels`."""
    clf.eval()
    return float((clf.predict(images) == labels.cpu()).float().mean())


def train_classifier(
    dataset: Dataset,
    backbone: str = DEFAULT_BACKBONE,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 3e-3,
    held_out: float = 0.2,
    seed: int = 0,
    backbone_kwargs: dict[str, Any] | None = None,
    pretrained_file: str | Path | None = None,
    device: str = "cpu",
    log: Callable[[int, float, float], None] | None = None,
) -> tuple[Classifier, float]:
    """Train on the dataset's labels; returns the classifier (eval mode) and its accuracy on a held-out split.

    `log(epoch, mean_loss, held_out_accuracy)` is called after each epoch.
    """
    from gantoolkit.device import resolve_device

    info_data = dataset.info
    if not info_data.is_image:
        raise DataError(f"{info_data.source!r} holds vectors; classifiers take images", "use an image dataset")
    if dataset.labels is None or not info_data.labelled:
        raise DataError(f"{info_data.source!r} has no labels to learn", "use a labelled dataset (class subfolders)")
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ConfigError(f"epochs, batch size and lr must be positive, got {epochs}, {batch_size}, {lr}")
    if epochs > MAX_ITERATIONS:
        raise ConfigError(f"--epochs must be at most {MAX_ITERATIONS:,}, got {epochs:,}")
    if not 0 < held_out < 1:
        raise ConfigError(f"the held-out share must lie in (0, 1), got {held_out}")
    if len(dataset) < 10:
        raise DataError(f"{info_data.source!r} has {len(dataset)} images; a classifier needs at least 10")
    if pretrained_file is not None:
        pretrained_file = Path(pretrained_file).expanduser()
        if pretrained_file.suffix != ".safetensors" or not pretrained_file.is_file():
            raise ConfigError(f"--pretrained-file {str(pretrained_file)!r} is not an existing .safetensors file",
                              "timm publishes model.safetensors for its backbones; nothing is downloaded")
    _check_backbone(backbone)
    try:
        kwargs = check_backbone_kwargs(dict(backbone_kwargs or {}))
    except ValueError as e:
        raise ConfigError(f"--backbone-opt: {e}") from None
    target = resolve_device(device)
    torch.manual_seed(seed)
    channels, side = info_data.shape[0], min(info_data.shape[1:])  # the stem is planned for the shorter side
    mean, std = _normalisation(backbone, channels, pretrained_file is not None)
    info = ClassifierInfo(
        backbone=backbone, num_classes=info_data.num_classes,
        class_names=list(info_data.class_names or [str(i) for i in range(info_data.num_classes)]),
        input_shape=list(info_data.shape), mean=mean, std=std, backbone_kwargs=kwargs,
        data=info_data.to_json(),
    )
    probe = build_network(info)
    info.stem_stride1, info.drop_maxpool, info.resize_to = _stem_plan(probe, side)
    net = build_network(info, pretrained_file)
    _check_runs(net, info)
    clf = Classifier(info, net).to(target)

    x = to_model_space(dataset.data, info_data)
    y = dataset.labels.long()
    train_idx, test_idx = _split(len(x), held_out, seed)
    batch_size = min(batch_size, len(train_idx))
    per_epoch = len(train_idx) // batch_size
    opt = torch.optim.AdamW(clf.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch)
    rng = torch.Generator().manual_seed(seed + 1)
    acc = 0.0
    for epoch in range(epochs):
        clf.train()
        order = train_idx[torch.randperm(len(train_idx), generator=rng)]
        total = torch.zeros((), device=target)
        for i in range(per_epoch):
            index = order[i * batch_size : (i + 1) * batch_size]
            xb, yb = _shift(x[index], rng).to(target), y[index].to(target)
            loss = F.cross_entropy(clf.logits(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach()
        acc = accuracy(clf, x[test_idx], y[test_idx])
        if log is not None:
            log(epoch + 1, float(total) / per_epoch, acc)
    info.held_out_accuracy, info.held_out_size, info.train_size = acc, len(test_idx), len(train_idx)
    info.training = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "held_out": held_out,
                     "pretrained": pretrained_file is not None}
    clf.eval().requires_grad_(False)
    return clf, acc


# -- files ----------------------------------------------------------------------------------------------------------


def save_classifier(path: str | Path | Output, clf: Classifier) -> None:
    """Write weights (safetensors) and `clf.info` plus provenance (JSON metadata) atomically."""
    import timm

    from gantoolkit import __version__
    from gantoolkit.files.checkpoint import write_file

    meta = {
        "classifier": asdict(clf.info),
        "gantoolkit_version": __version__,
        "timm_version": timm.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_file(path, dict(clf.net.state_dict()), FORMAT, FORMAT_VERSION, meta)


def load_classifier(path: str | Path, device: str = "cpu") -> Classifier:
    """A saved classifier in eval mode with frozen parameters; anything else is one clear error."""
    from gantoolkit.device import resolve_device
    from gantoolkit.errors import CheckpointError
    from gantoolkit.files.checkpoint import read_file

    tensors, meta = read_file(Path(path), FORMAT, FORMAT_VERSION, "classifier", _HINT)
    try:
        info = ClassifierInfo.from_json(meta["classifier"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r} has damaged classifier metadata ({e})", _HINT) from None
    bad = next((k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())), None)
    if bad is not None:
        raise CheckpointError(f"{str(path)!r} holds NaN or infinite weights ({bad})", _HINT)
    net = build_network(info)
    try:
        net.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(
            f"{str(path)!r} does not match backbone {info.backbone!r} ({str(e).splitlines()[0]})",
            "was it written with another timm version?",
        ) from None
    clf = Classifier(info, net).to(resolve_device(device))
    clf.eval().requires_grad_(False)
    return clf

