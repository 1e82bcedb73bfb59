"""The conformance kit: check that a component keeps the contract the core relies on.

Plugin authors call these from their own tests::

    from gantoolkit.testing import check_loss, plugin_registry
    import my_gan_plugin

    def test_my_loss_conforms():
        check_loss("lsgan-targets", registry=plugin_registry(my_gan_plugin))

Each `check_*` function checks shapes, dtypes, devices (the CPU always, CUDA when there is one), finite values and
flowing gradients, then trains a few real steps through `gantoolkit.training.trainer.Trainer` on tiny data with built-in
partners, saves a checkpoint, reloads it with `load_generator` (identical samples), resumes it (bit-identical next
step) and samples from it. A broken rule raises `ConformanceError` (an `AssertionError`) whose message names the
component and the rule: ``architecture 'x': discriminator.head must return shape (B,), got (B, 1) [rule: head-shape]``.
A component that cannot be checked on this machine (a dataset that needs a download) raises `ComponentUnavailable`,
which pytest reports as a skip. `RULES` lists every rule.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.metadata
import json
import math
import re
import tempfile
import types
import unittest
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, cast

import torch
from torch import nn

import gantoolkit
from gantoolkit.components import (
    Architecture,
    Conditioning,
    ControllerContext,
    Loss,
    ModelSpec,
    OptimizerSpec,
    PenaltyContext,
    TrainingController,
)
from gantoolkit.config import Choice, RunConfig, apply_layer
from gantoolkit.data import IMAGE, VECTOR, DataInfo, DataRequest, Dataset, DataSource
from gantoolkit.device import autocast
from gantoolkit.errors import ConfigError, DataError, GanToolkitError
from gantoolkit.kinds import KINDS
from gantoolkit.plugins import PluginHost, PluginRecord
from gantoolkit.registry import ComponentSpec, Registry, get_registry, use_registry

__all__ = [
    "RULES",
    "ComponentUnavailable",
    "ConformanceError",
    "check_architecture",
    "check_augmentation",
    "check_command",
    "check_component",
    "check_conditioning",
    "check_config",
    "check_controller",
    "check_dataset",
    "check_direction_finder",
    "check_logger",
    "check_loss",
    "check_metric",
    "check_plugin",
    "check_registered",
    "check_sampler",
    "check_training",
    "plugin_registry",
    "registered_components",
    "tiny_dataset",
]

#: every rule the kit checks, with what it means
RULES: dict[str, str] = {
    "registered": "the name is registered (and, for a plugin, loads without errors)",
    "options": "the options given to the check are accepted by the factory",
    "factory-type": "the factory builds an instance of the kind's base class from gantoolkit.components / data",
    "check-raises-configerror": "Architecture.check refuses data only with ConfigError",
    "supports-data": "the architecture accepts at least one of the shapes it is checked on",
    "rectangular": "supports_rectangular is a bool; an architecture that declares it accepts 3x8x16 images",
    "build-returns": "Architecture.build returns (generator, discriminator), both torch.nn.Module",
    "discriminator-interface": "the discriminator has features(x), head(h) and a positive int feature_dim",
    "generator-shape": "the generator maps B x generator_input_dim to B x data shape",
    "dtype": "float32 inputs give float32 outputs (generator, features, head, losses, scores)",
    "generator-range": "generated images lie in [-1, 1]",
    "features-shape": "discriminator.features returns B x feature_dim",
    "head-shape": "discriminator.head returns raw scores of shape (B,)",
    "device": "outputs stay on the inputs' device (checked on CUDA when available)",
    "finite-outputs": "outputs of finite inputs are finite",
    "critic-batchnorm": "with critic_batchnorm=False the discriminator has no BatchNorm (or build refuses it)",
    "gradients": "every trainable parameter and input that should receive a gradient gets a finite one",
    "eval-batch-independent": "in eval mode, a sample does not depend on the rest of its batch",
    "deterministic-build": "the same torch seed builds the same weights",
    "conditional-norm": "an architecture that declares supports_conditional_norm builds its generator's "
                        "normalisation layers with spec.generator_norm and hands them the labels",
    "n-critic": "Loss.n_critic is an int >= 1",
    "critic-batchnorm-flag": "Loss.critic_batchnorm is a bool",
    "real-scores-flag": "Loss.needs_real_scores is a bool (True: generator_loss takes the real scores too)",
    "score-midpoint": "Loss.score_midpoint is a finite number (the score halfway between real and fake) or None "
                      "(scores without a fixed origin)",
    "optimizer": "Loss.optimizer() returns an OptimizerSpec with a known optimizer, lr > 0, betas in [0, 1)",
    "loss-scalar": "losses and penalties are 0-dim float tensors",
    "finite-losses": "losses stay finite, also for raw scores as large as +-30 (work on logits)",
    "score-direction": "a higher score means 'more real': the critic's loss prefers high real / low fake scores, "
                       "the generator's loss prefers high fake scores",
    "penalty": "Loss.penalty returns None or a finite scalar that reaches the critic's parameters",
    "penalty-loss-scale": "under fp16 with a loss scaler a penalty keeps its fp32 value (it takes the critic's "
                          "gradients with ctx.gradients, which applies the scale)",
    "after-step": "Loss.after_discriminator_step runs on a critic",
    "setup": "Conditioning.setup / TrainingController.setup accept the data (or refuse it with ConfigError)",
    "extra-dims": "generator_extra_dim, discriminator_extra_channels and code_dim are ints >= 0",
    "generator-module": "Conditioning.generator_module returns None or a torch.nn.Module whose parameters get "
                        "gradients through generator_vector(labels, module)",
    "generator-vector": "Conditioning.generator_vector returns B x generator_extra_dim floats",
    "discriminator-input": "Conditioning.discriminator_input returns B x (C + extra) x ... in x's dtype",
    "critic-module": "critic_module(feature_dim) returns None or a torch.nn.Module",
    "score": "Conditioning.score returns (B,) scores through which the head score and features get gradients",
    "norm-layer": "with conditional_norm, Conditioning.norm_layer(C) returns a module mapping (x, labels) to x's "
                  "shape for B x C and B x C x H x W, whose parameters get gradients",
    "sample-labels": "sample_labels returns None (unconditional) or int64 (n,) labels in [0, K), seeded",
    "labels-used": "a conditioning that requires labels lets them change the generator's or the critic's input "
                   "or score, or the normalisation layers",
    "conditioning-terms": "Conditioning.discriminator_term / generator_term return None or finite scalars",
    "codes": "TrainingController.sample_codes returns n x code_dim floats (None when code_dim is 0), seeded",
    "controller-terms": "controller terms are None or finite scalars",
    "dataset-returns": "DataSource.load returns a gantoolkit Dataset whose info is a DataInfo",
    "dataset-tensors": "images are uint8 N x C x H x W, vectors float32 N x D, matching info.shape",
    "labels": "labels are None for unlabelled data, else int64 (N,) in [0, num_classes), "
              "with num_classes class names (or none)",
    "info-json": "DataInfo survives the JSON round trip that checkpoints make",
    "deterministic-load": "loading twice gives the same data (resume depends on it)",
    "image-size": "image datasets honour DataRequest.image_size",
    "build-models": "gantoolkit composes the component with built-in partners",
    "train-step": "Trainer.train_step runs",
    "training-updates": "a few training steps change both networks' weights",
    "parameters-train": "a few training steps change every parameter a conditioning or controller brings (its "
                        "generator and critic modules, its normalisation layers, any module it keeps itself)",
    "finite-parameters": "weights stay finite while training",
    "checkpoint-save": "a checkpoint can be written (every state tensor is a plain tensor)",
    "checkpoint-roundtrip": "load_generator on the checkpoint gives identical samples",
    "sampling": "LoadedGenerator.sample gives finite samples of the data's shape, the same for the same seed",
    "resume-exact": "a run resumed from its checkpoint takes the same next step as the uninterrupted run",
    "cuda": "a training step runs on CUDA (when available)",
    "metric-keys": "Metric.keys is a non-empty tuple of names",
    "metric-why-not": "Metric.why_not returns None or a one-line reason",
    "metric-values": "Metric.compute returns {declared key: number or None} (NaN and inf read as undefined)",
    "metric-deterministic": "the same samples give the same values",
    "finder-directions": "DirectionFinder.find returns Directions that fit the generator (K x latent or code size, "
                         "one distinct name per row), unit rows, with the generator's identity as their source",
    "finder-deterministic": "finding twice gives the same directions",
    "finder-file": "the directions survive a directions file (save_directions, load_directions)",
    "finder-usable": "moving along each direction (gantool sample --direction) changes the samples",
    "sampler-setup": "Sampler.setup binds to a trained generator (a class it cannot honour is refused with "
                     "ConfigError)",
    "sampler-samples": "Sampler.sample(n, seed) returns n finite float32 CPU samples of the data's shape (images in "
                       "[-1, 1]) and int64 (n,) labels in range, or None when unconditional",
    "sampler-class": "a sampler that accepts --class draws that class only",
    "sampler-deterministic": "a sampler set up the same way gives the same samples for the same seed",
    "sampler-describe": "Sampler.describe() returns one line",
    "logger-session": "a logger takes a session's records (start, scalars, a sample grid, a rollback, close) and a "
                      "resumed session's without raising, and writes only inside the run directory",
    "augment-sign-flag": "Augmentation.reads_score_sign is a bool",
    "augment-output": "Augmentation.augment returns a finite tensor of its input's shape, dtype and device",
    "augment-seeded": "augment draws only from the generator it is given: the same generator state gives the same "
                      "output, and torch's global RNG is left untouched",
    "augment-gradients": "augment is differentiable: a finite, non-zero gradient reaches its input",
    "augment-state": "state_dict() holds tensors that, loaded into a new instance, give the same output and scalars "
                     "(ADA's p survives a checkpoint); scalars() are 0-dim float tensors",
    "config-valid": "a preset is a table of settings that RunConfig accepts",
    "config-components": "the component names in a preset are registered",
    "command": "a command is a typer.Typer or a function, not a core name, and answers --help",
    "plugin-installed": "the distribution is installed and has an entry point in the 'gantoolkit' group",
    "plugin-loads": "the plugin imports and its hooks run without errors or name clashes",
    "provenance": "each registered component records the plugin's distribution and version",
}

#: tiny options for the built-in partners the kit trains a component with
PARTNER_OPTIONS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden_dim": 16, "g_depth": 2, "d_depth": 2},
    "dcgan": {"ngf": 8, "ndf": 8},
}
IMAGE_SHAPE = (3, 8, 8)
#: images that are not square, also checked for an architecture that declares `supports_rectangular`
WIDE_SHAPE = (3, 8, 16)
VECTOR_SHAPE = (2,)
CLASSES = 3
LATENT = 8
BATCH = 4


class ConformanceError(AssertionError):
    """A component broke a rule of its contract; `rule` is a key of `RULES`."""

    def __init__(self, subject: str, rule: str, detail: str) -> None:
        self.subject, self.rule, self.detail = subject, rule, detail
        super().__init__(f"{subject}: {detail} [rule: {rule}]")


class ComponentUnavailable(unittest.SkipTest):
    """The component cannot be checked here (for example a dataset whose files are not on this machine)."""


class _Check:
    """Raises `ConformanceError`s about one subject."""

    def __init__(self, kind: str, name: str) -> None:
        self.subject = f"{kind} {name!r}"

    def fail(self, rule: str, detail: str) -> NoReturn:
        assert rule in RULES, rule
        raise ConformanceError(self.subject, rule, detail)

    def require(self, ok: Any, rule: str, detail: str | Callable[[], str]) -> None:
        if not ok:
            self.fail(rule, detail() if callable(detail) else detail)

    @contextlib.contextmanager
    def step(self, rule: str, what: str) -> Iterator[None]:
        """Any exception inside the block breaks `rule`."""
        try:
            yield
        except (ConformanceError, ComponentUnavailable):
            raise
        except Exception as e:
            self.fail(rule, f"{what} raised {type(e).__name__}: {_first_line(e)}")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _shape(t: Any) -> str:
    if not isinstance(t, torch.Tensor):
        return f"a {type(t).__name__}"
    return "(" + ", ".join(str(s) for s in t.shape) + ("," if t.dim() == 1 else "") + ")"


@contextlib.contextmanager
def _quietly() -> Iterator[None]:
    """One intra-op thread (tiny models run fastest so, and do not fight other processes for cores), and the
    caller's global RNG state restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)


def _quiet(check: Callable[..., Any]) -> Callable[..., Any]:
    """Run a check inside `_quietly()`."""

    @functools.wraps(check)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _quietly():
            return check(*args, **kwargs)

    return run


def _bshape(t: Any) -> str:
    """A batch-first shape with the batch written as B: (B, 1)."""
    if not isinstance(t, torch.Tensor) or t.dim() == 0:
        return _shape(t)
    return "(" + ", ".join(["B", *(str(s) for s in t.shape[1:])]) + ("," if t.dim() == 1 else "") + ")"


def _devices() -> list[torch.device]:
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


# -- registries -------------------------------------------------------------------------------------------------


def plugin_registry(*plugins: Any, entry_points: bool = False) -> Registry:
    """A registry of the built-ins plus `plugins` (modules or objects with `@gantoolkit.hookimpl` functions),
    and, with `entry_points=True`, every installed plugin. A plugin that fails to load is a `ConformanceError`."""
    host = PluginHost()
    host.load_builtins()
    if entry_points:
        host.load_entry_points(force=True)
    records = []
    for plugin in plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        record = PluginRecord(name, None, None, name)
        host.register_module(plugin, record)
        records.append(record)
    registry = Registry(host)
    for record in records:
        if record.errors:
            raise ConformanceError(f"plugin {record.name!r}", "plugin-loads", "; ".join(record.errors))
    return registry


def _factory_plugin(kind: str, name: str, factory: Any, argument: str | None = None) -> types.ModuleType:
    module = types.ModuleType(f"conformance-{name}")
    hook = KINDS[kind].hook

    def register_hook(register: Callable[..., None]) -> None:
        register(name, factory, summary="under test", argument=argument)

    register_hook.__name__ = hook
    setattr(module, hook, gantoolkit.hookimpl(register_hook))
    return module


def _resolve(kind: str, component: Any, name: str | None, registry: Registry | None,
             argument: str | None = None) -> tuple[str, Registry]:
    """(registered name, registry holding it) for a name, or for a factory registered on the fly."""
    if isinstance(component, str):
        registry = registry or get_registry()
        try:
            registry.get(kind, component)
        except GanToolkitError as e:
            raise ConformanceError(f"{kind} {component!r}", "registered", str(e)) from None
        return component, registry
    if not callable(component):
        raise TypeError(f"give a registered {kind} name or a factory, not {type(component).__name__}")
    if name is None:
        name = getattr(component, "__name__", "under-test").lower().replace("_", "-")
        if name in plugin_registry().specs[kind]:  # a built-in's name: keep both apart
            name += "-under-test"
    registry = plugin_registry(_factory_plugin(kind, name, component, "ARGUMENT" if argument is not None else None))
    return (f"{name}:{argument}" if argument is not None else name), registry


def _build_component(chk: _Check, spec: ComponentSpec, options: dict[str, Any] | None) -> Any:
    """The factory's product. Without options, a component that needs some (a required option, or a ConfigError
    from the factory) cannot be checked here: `ComponentUnavailable`. With options, that breaks `options`."""
    try:
        bound = spec.bind(options)
        with chk.step("factory-type", f"{spec.name}(**options)"):
            try:
                return spec.load()(**bound)
            except GanToolkitError as e:
                if options:
                    chk.fail("options", f"{spec.name}(**{options!r}) raised {type(e).__name__}: {e}")
                raise ComponentUnavailable(f"{chk.subject} cannot be built without options ({e}); "
                                           "check it with options=...") from e
    except GanToolkitError as e:
        if options:
            chk.fail("options", str(e))
        raise ComponentUnavailable(f"{chk.subject} cannot be built without options ({e}); "
                                   "check it with options=...") from e


def _create(chk: _Check, registry: Registry, kind: str, name: str, options: dict[str, Any] | None) -> Any:
    """The component built from its options; it must be an instance of its kind's base class."""
    base = KINDS[kind].base_class()
    spec, _ = registry.get(kind, name)
    obj = _build_component(chk, spec, options)
    chk.require(isinstance(obj, base), "factory-type",
                lambda: f"the factory built a {type(obj).__name__}, not a gantoolkit {base.__name__}")
    return obj


# -- tiny data -------------------------------------------------------------------------------------------------


def tiny_info(shape: Sequence[int], classes: int = CLASSES) -> DataInfo:
    shape = tuple(int(s) for s in shape)
    return DataInfo(
        source="conformance:" + "x".join(map(str, shape)),
        modality=IMAGE if len(shape) == 3 else VECTOR,
        shape=shape,
        num_classes=classes,
        class_names=tuple(f"class{i}" for i in range(classes)),
    )


def tiny_dataset(shape: Sequence[int] = IMAGE_SHAPE, classes: int = CLASSES, n: int = 64, seed: int = 0) -> Dataset:
    """A small labelled dataset: images (C, H, W) whose classes differ in mean colour, or 2-D-like vectors in
    Gaussian blobs (one per class). `classes=0` makes it unlabelled."""
    info = tiny_info(shape, classes)
    rng = torch.Generator().manual_seed(seed)
    groups = max(classes, 1)
    labels = torch.arange(n) % groups
    if info.is_image:
        base = torch.rand(groups, *info.shape, generator=rng) * 180
        noise = torch.rand(n, *info.shape, generator=rng) * 75
        data = (base[labels] + noise).round().clamp(0, 255).to(torch.uint8)
    else:
        means = torch.randn(groups, *info.shape, generator=rng) * 2
        data = (means[labels] + 0.1 * torch.randn(n, *info.shape, generator=rng)).float()
    return Dataset(info, data, labels.long() if classes else None)


# -- the training round trip shared by every component check ----------------------------------------------------


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> str | None:
    """None when equal, else the first differing key."""
    if a.keys() != b.keys():
        return f"keys differ: {sorted(set(a) ^ set(b))[:3]}"
    for key in a:
        if a[key].shape != b[key].shape or not torch.equal(a[key], b[key]):
            return key
    return None


def _changed(before: dict[str, torch.Tensor], module: nn.Module) -> bool:
    now = dict(module.named_parameters())
    return any(not torch.equal(before[k], p.detach()) for k, p in now.items() if k in before)


def _train_roundtrip(chk: _Check, registry: Registry, config: RunConfig, dataset: Dataset, steps: int = 2) -> None:
    """Train `steps` steps, checkpoint, reload (same samples), sample, resume (same next step), on the CPU;
    one training step on CUDA when there is a GPU."""
    from gantoolkit.files.checkpoint import load_checkpoint
    from gantoolkit.files.runs import create_run_dir
    from gantoolkit.models import build_models
    from gantoolkit.sampling.generator import load_generator
    from gantoolkit.training.trainer import Trainer

    cpu = torch.device("cpu")
    saved_config = config.to_json()
    where = f"with {config.arch.name} + {config.loss.name} + {config.cond.name} on {dataset.info.source}"
    with tempfile.TemporaryDirectory(prefix="gantool-conformance-") as tmp, use_registry(registry), \
            torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        with chk.step("build-models", f"building the models {where}"):
            models = build_models(config, dataset.info, registry)
        run_dir = create_run_dir(Path(tmp) / "run", "conformance")
        with chk.step("train-step", f"creating the trainer {where}"):
            trainer = Trainer(models, dataset, run_dir, cpu)
        g0, d0 = _state(trainer.G), _state(trainer.D)
        added = _added_parameters(trainer)
        added0 = {label: p.detach().clone() for label, p in added.items()}
        for _ in range(steps):
            with chk.step("train-step", f"training step {trainer.step + 1} {where}"):
                losses = trainer.train_step()
            trainer.step += 1
            for key, value in losses.items():
                chk.require(bool(torch.isfinite(value).all()), "finite-losses",
                            cast(Callable[[], str],
                                 lambda k=key, v=value: f"{k} is {v.item()} at training step {trainer.step} {where}"))
        chk.require(_changed(g0, trainer.G), "training-updates",
                    f"{steps} training steps {where} left the generator's weights unchanged "
                    "(no gradient reaches them?)")
        chk.require(_changed(d0, trainer.D), "training-updates",
                    f"{steps} training steps {where} left the critic's weights unchanged "
                    "(no gradient reaches them?)")
        frozen = [label for label, p in added.items() if torch.equal(added0[label], p.detach())]
        chk.require(not frozen, "parameters-train",
                    lambda: f"{steps} training steps {where} left {', '.join(frozen[:3])} unchanged: no gradient "
                            "reaches it, it is frozen, or nothing trains it (a module a component keeps itself is "
                            "neither trained nor saved: return it from generator_module() or critic_module(); "
                            "fixed tensors belong in buffers)")
        for net, module in (("generator", trainer.G), ("critic", trainer.D)):
            bad = [k for k, p in module.named_parameters() if not torch.isfinite(p).all()]
            chk.require(not bad, "finite-parameters", f"{net} weights {bad[:3]} became NaN or infinite {where}")
        with chk.step("checkpoint-save", f"saving a checkpoint {where}"):
            path = trainer.save_checkpoint()
        _check_reload(chk, load_generator, trainer, path, dataset.info, where)
        # resume: the uninterrupted run's next step ...
        with chk.step("train-step", f"training step {trainer.step + 1} {where}"):
            trainer.train_step()
        expected_g, expected_d = _state(trainer.G), _state(trainer.D)
        # ... equals the next step of a run rebuilt from the checkpoint
        with chk.step("resume-exact", f"resuming from the checkpoint {where}"):
            again = RunConfig.from_json(saved_config)
            torch.manual_seed(again.seed)
            resumed = Trainer(build_models(again, dataset.info, registry), dataset, run_dir, cpu)
            resumed.load_state(load_checkpoint(path))
            resumed.train_step()
        for net, want, got in (("generator", expected_g, resumed.G), ("critic", expected_d, resumed.D)):
            differ = _same_state(want, _state(got))
            chk.require(differ is None, "resume-exact",
                        f"after resuming {where}, the next step gives a different {net} ({differ}); some state is "
                        "not in the modules' state_dict or depends on something other than the seed")
        if torch.cuda.is_available():
            gpu = torch.device("cuda")
            with chk.step("cuda", f"a training step on CUDA {where}"):
                torch.manual_seed(config.seed)
                on_gpu = Trainer(build_models(RunConfig.from_json(saved_config), dataset.info, registry),
                                 dataset, create_run_dir(Path(tmp) / "gpu", "gpu"), gpu)
                losses = on_gpu.train_step()
            chk.require(all(v.device.type == "cuda" and bool(torch.isfinite(v).all()) for v in losses.values()),
                        "cuda", f"a training step on CUDA {where} gave non-finite losses or left the device")


def _added_parameters(trainer: Any) -> dict[str, nn.Parameter]:
    """The parameters the run's conditioning and controllers bring, by a label that says where each is: their
    generator and critic modules, the conditioning's normalisation layers in the generator, and any module or
    parameter they hold as an attribute (which nothing would train)."""
    from gantoolkit.layers import takes_labels

    models = trainer.models
    cond = f"conditioning {models.config.cond.name!r}"
    sources: list[tuple[str, Any]] = [(f"{cond}'s generator_module", trainer.G.cond_module),
                                      (f"{cond}'s critic_module", trainer.D.cond_module)]
    sources += [(f"{cond}'s normalisation layer body.{n}", m) for n, m in trainer.G.body.named_modules()
                if takes_labels(m)]
    owners = [(cond, models.conditioning)]
    for name, controller in models.controllers.items():
        if name in trainer.D.controllers:
            sources.append((f"controller {name!r}'s critic_module", trainer.D.controllers[name]))
        owners.append((f"controller {name!r}", controller))
    for owner, component in owners:
        sources += [(f"{owner}'s self.{attr}", value) for attr, value in vars(component).items()
                    if isinstance(value, nn.Module | nn.Parameter)]
    found: dict[str, nn.Parameter] = {}
    seen: set[int] = set()
    for label, source in sources:
        params = [("", source)] if isinstance(source, nn.Parameter) else \
            list(source.named_parameters()) if source is not None else []
        for pname, param in params:
            if id(param) not in seen:
                seen.add(id(param))
                found[f"{label}.{pname}".rstrip(".")] = param
    return found


def _check_reload(chk: _Check, load_generator: Any, trainer: Any, path: Path, info: DataInfo, where: str) -> None:
    """load_generator(path) must reproduce the trainer's samples and sample by seed."""
    with chk.step("checkpoint-roundtrip", f"load_generator on the checkpoint {where}"):
        loaded = load_generator(path)
    n = 6
    z = loaded.latents(n, seed=3)
    labels, codes = loaded.labels(n), loaded.codes(n, seed=3)
    G = trainer.sampler
    was_training = G.training
    G.eval()
    with torch.no_grad():
        ours = G(z, labels, codes).float()
    G.train(was_training)
    with chk.step("checkpoint-roundtrip", f"generating from the reloaded generator {where}"):
        theirs = loaded.generate(z, labels, codes)
    chk.require(ours.shape == theirs.shape and torch.equal(ours, theirs), "checkpoint-roundtrip",
                lambda: f"samples of the generator reloaded from its checkpoint {where} differ from the trained one's "
                        f"(max difference {(ours - theirs).abs().max().item() if ours.shape == theirs.shape else '-'})")
    klass = 0 if loaded.conditional else None
    with chk.step("sampling", f"LoadedGenerator.sample {where}"):
        first, _ = loaded.sample(5, seed=1, class_index=klass)
        second, _ = loaded.sample(5, seed=1, class_index=klass)
    chk.require(tuple(first.shape) == (5, *info.shape), "sampling",
                f"sample(5) {where} returned shape {_shape(first)}, expected (5, {', '.join(map(str, info.shape))})")
    chk.require(bool(torch.isfinite(first).all()), "sampling", f"sample() {where} returned NaN or infinite values")
    chk.require(torch.equal(first, second), "sampling", f"sample() {where} differs between two calls with one seed")
    if info.is_image:
        chk.require(first.min() >= -1 and first.max() <= 1, "generator-range",
                    lambda: f"sampled images {where} span [{first.min():.3g}, {first.max():.3g}], not [-1, 1]")


def _config(arch: str, loss: str, cond: str, options: dict[str, dict[str, Any]] | None, controllers=()) -> RunConfig:
    options = options or {}

    def choice(key: str, name: str) -> Choice:
        return Choice(name, dict(options.get(key, PARTNER_OPTIONS.get(name, {}) if key == "arch" else {})))

    return RunConfig(
        arch=choice("arch", arch), loss=choice("loss", loss), cond=choice("cond", cond), data=Choice("conformance"),
        controllers=[Choice(c, dict(options.get(c, {}))) for c in controllers],
        latent_dim=LATENT, batch_size=8, steps=3, seed=0, device="cpu", log_every=1, keep_checkpoints=5,
    )


def _partner_arch(info: DataInfo) -> str:
    return "dcgan" if info.is_image else "mlp"


@_quiet
def check_training(
    arch: str = "dcgan",
    loss: str = "bce",
    cond: str = "none",
    *,
    controllers: Sequence[str] = (),
    options: dict[str, dict[str, Any]] | None = None,
    data: Dataset | str | Sequence[int] = IMAGE_SHAPE,
    steps: int = 2,
    registry: Registry | None = None,
) -> None:
    """Train registered components together for a few steps and check the checkpoint round trip, sampling and
    resume. `options` maps "arch", "loss", "cond" or a controller's name to options (tiny defaults for the
    built-in architectures); `data` is a Dataset, a registered dataset name ("toy:ring") or a shape."""
    registry = registry or get_registry()
    parts = [f"{arch}+{loss}+{cond}", *controllers]
    chk = _Check("combination", " ".join(parts))
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, str):
        dataset = _load_registered(chk, registry, data, {}, image_size=None)
    else:
        dataset = tiny_dataset(tuple(data))
    _train_roundtrip(chk, registry, _config(arch, loss, cond, options, controllers), dataset, steps)


# -- architectures --------------------------------------------------------------------------------------------


@_quiet
def check_architecture(
    architecture: str | Callable[..., Architecture],
    options: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    registry: Registry | None = None,
    shapes: Sequence[Sequence[int]] | None = None,
    train: bool = True,
) -> None:
    """Check an architecture on each shape it accepts (image C x H x W and/or vector D), then train it. By default
    the shapes are 3x8x8 images and 2-D vectors, and 3x8x16 images too when it declares `supports_rectangular`."""
    name, registry = _resolve("architecture", architecture, name, registry)
    chk = _Check("architecture", name)
    arch: Architecture = _create(chk, registry, "architecture", name, options)
    rectangular = getattr(arch, "supports_rectangular", False)
    chk.require(isinstance(rectangular, bool), "rectangular",
                f"supports_rectangular must be True or False, got {rectangular!r}")
    if shapes is None:
        shapes = (IMAGE_SHAPE, VECTOR_SHAPE, *((WIDE_SHAPE,) if rectangular else ()))
    supported: list[DataInfo] = []
    for shape in shapes:
        info = tiny_info(shape)
        try:
            arch.check(info)
        except ConfigError as e:
            chk.require(not (rectangular and tuple(info.shape) == WIDE_SHAPE), "rectangular",
                        f"it declares supports_rectangular, but check() refuses {info.source}: {e}")
            continue
        except Exception as e:
            chk.fail("check-raises-configerror",
                     f"check() on {info.source} raised {type(e).__name__}: {_first_line(e)}; "
                     "refuse data with ConfigError")
        supported.append(info)
    chk.require(supported, "supports-data",
                f"check() refuses every shape it was given ({', '.join('x'.join(map(str, s)) for s in shapes)}); "
                "pass shapes= that it supports")
    for info in supported:
        for device in _devices():
            _check_bodies(chk, arch, info, extra=0, batchnorm=True, device=device)
            _check_bodies(chk, arch, info, extra=CLASSES, batchnorm=False, device=device)
        _check_deterministic_build(chk, arch, info)
        _check_conditional_norm(chk, arch, info)
        if train:
            config = _config(name, "bce", "onehot", {"arch": dict(options or {})})
            _train_roundtrip(chk, registry, config, tiny_dataset(info.shape))


def _spec(info: DataInfo, extra: int, batchnorm: bool) -> ModelSpec:
    return ModelSpec(
        data=info,
        latent_dim=LATENT,
        generator_input_dim=LATENT + extra,
        discriminator_input_shape=(info.shape[0] + extra, *info.shape[1:]),
        critic_batchnorm=batchnorm,
    )


def _build(chk: _Check, arch: Architecture, spec: ModelSpec, where: str) -> tuple[nn.Module, nn.Module] | None:
    """The bodies, or None when build refuses a BatchNorm-free critic with ConfigError."""
    try:
        built = arch.build(spec)
    except ConfigError:
        if not spec.critic_batchnorm:
            return None
        raise
    except Exception as e:
        chk.fail("build-returns", f"build() {where} raised {type(e).__name__}: {_first_line(e)}")
    chk.require(isinstance(built, tuple) and len(built) == 2 and all(isinstance(m, nn.Module) for m in built),
                "build-returns", f"build() {where} must return (generator, discriminator) modules, got {built!r:.80}")
    return built


def _check_bodies(chk: _Check, arch: Architecture, info: DataInfo, extra: int, batchnorm: bool,
                  device: torch.device) -> None:
    spec = _spec(info, extra, batchnorm)
    where = (f"for {info.source}" + (f" with {extra} extra input channels" if extra else "")
             + ("" if batchnorm else " and critic_batchnorm=False") + (f" on {device}" if device.type != "cpu" else ""))
    try:
        built = _build(chk, arch, spec, where)
    except ConfigError as e:
        chk.fail("build-returns", f"build() {where} raised ConfigError: {e}")
    if built is None:
        return
    d: Any  # a discriminator body: features(), head(), feature_dim (checked below)
    g, d = (m.to(device) for m in built)
    for attr in ("features", "head"):
        chk.require(callable(getattr(d, attr, None)), "discriminator-interface",
                    f"the discriminator {where} has no method {attr}() (see gantoolkit.components.Architecture)")
    feature_dim = getattr(d, "feature_dim", None)
    chk.require(isinstance(feature_dim, int) and not isinstance(feature_dim, bool) and feature_dim > 0,
                "discriminator-interface",
                f"discriminator.feature_dim {where} must be a positive int, got {feature_dim!r}")
    if not batchnorm:
        norms = [n for n, m in d.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        chk.require(not norms, "critic-batchnorm",
                    f"the discriminator {where} has BatchNorm layers {norms[:3]}; a per-sample penalty forbids them")
    rng = torch.Generator().manual_seed(0)
    v = torch.randn(BATCH, spec.generator_input_dim, generator=rng).to(device)
    g.train()
    d.train()
    with chk.step("generator-shape", f"generator(B x {spec.generator_input_dim}) {where}"):
        x = g(v)
    want = (BATCH, *info.shape)
    chk.require(isinstance(x, torch.Tensor) and tuple(x.shape) == want, "generator-shape",
                f"the generator {where} must return shape {want}, got {_shape(x)}")
    chk.require(x.dtype == torch.float32, "dtype", f"the generator {where} returned {x.dtype}, not float32")
    chk.require(x.device.type == device.type, "device", f"the generator {where} returned a tensor on {x.device}")
    chk.require(bool(torch.isfinite(x).all()), "finite-outputs", f"the generator {where} returned NaN or inf")
    if info.is_image:
        chk.require(x.min() >= -1 and x.max() <= 1, "generator-range",
                    lambda: f"generated images {where} span [{x.min():.3g}, {x.max():.3g}]; end with tanh")
    x_in = x
    if extra:
        planes = torch.randn(BATCH, extra, *info.shape[1:], generator=rng).to(device)
        x_in = torch.cat([x, planes], dim=1)
    with chk.step("features-shape", f"discriminator.features {where}"):
        h = d.features(x_in)
    chk.require(isinstance(h, torch.Tensor) and tuple(h.shape) == (BATCH, feature_dim), "features-shape",
                f"discriminator.features {where} must return shape (B, feature_dim) = ({BATCH}, {feature_dim}), "
                f"got {_shape(h)}")
    with chk.step("head-shape", f"discriminator.head {where}"):
        s = d.head(h)
    chk.require(isinstance(s, torch.Tensor) and tuple(s.shape) == (BATCH,), "head-shape",
                f"discriminator.head {where} must return shape (B,), got {_bshape(s)}")
    chk.require(h.dtype == torch.float32 and s.dtype == torch.float32, "dtype",
                f"the discriminator {where} returned {h.dtype} features and {s.dtype} scores, not float32")
    chk.require(h.device.type == device.type and s.device.type == device.type, "device",
                f"the discriminator {where} returned tensors on {h.device} / {s.device}")
    chk.require(bool(torch.isfinite(s).all()), "finite-outputs", f"the discriminator {where} returned NaN or inf")
    with chk.step("gradients", f"backward through discriminator(generator(z)) {where}"):
        s.mean().backward()
    for net, module in (("generator", g), ("discriminator", d)):
        for pname, p in module.named_parameters():
            if not p.requires_grad:
                continue
            chk.require(p.grad is not None, "gradients",
                        f"{net} parameter {pname!r} {where} receives no gradient (is it used in forward?)")
            assert p.grad is not None  # chk.require raised otherwise
            chk.require(bool(torch.isfinite(p.grad).all()), "gradients",
                        f"{net} parameter {pname!r} {where} got a NaN or infinite gradient")
    g.eval()
    with torch.no_grad():
        full, single = g(v), g(v[:1])
    chk.require(torch.allclose(full[:1], single, atol=1e-5, rtol=1e-4), "eval-batch-independent",
                f"in eval mode the generator {where} gives a different sample for the same z in a batch of "
                f"{BATCH} and alone (batch statistics used at eval time?)")


def _check_conditional_norm(chk: _Check, arch: Architecture, info: DataInfo) -> None:
    """An architecture that declares conditional normalisation makes its generator's normalisation layers with
    `spec.generator_norm` and hands them the labels: body(v, labels) depends on them and trains them."""
    from gantoolkit.layers import TAKES_LABELS, ConditionalBatchNorm

    flag = getattr(arch, "supports_conditional_norm", False)
    chk.require(isinstance(flag, bool), "conditional-norm",
                f"supports_conditional_norm must be True or False, got {flag!r}")
    if not flag:
        return
    made: list[nn.Module] = []

    def norm(num_features: int) -> nn.Module:
        layer = ConditionalBatchNorm(num_features, CLASSES)
        setattr(layer, TAKES_LABELS, True)
        made.append(layer)
        return layer

    where = f"for {info.source} with spec.generator_norm set"
    spec = dataclasses.replace(_spec(info, 0, True), generator_norm=norm)
    built = _build(chk, arch, spec, where)
    assert built is not None  # a BatchNorm critic is allowed here
    g = built[0].train()
    chk.require(made, "conditional-norm",
                f"the architecture declares supports_conditional_norm but build() {where} made no layer with "
                "spec.generator_norm (see gantoolkit.layers.generator_norm)")
    v = torch.randn(BATCH, spec.generator_input_dim, generator=torch.Generator().manual_seed(0))
    labels, other = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2])
    with chk.step("conditional-norm", f"generator(v, labels) {where}"):
        x = g(v, labels)
        x_other = g(v, other)
    chk.require(isinstance(x, torch.Tensor) and tuple(x.shape) == (BATCH, *info.shape), "conditional-norm",
                f"generator(v, labels) {where} must return shape {(BATCH, *info.shape)}, got {_shape(x)}")
    chk.require(not torch.equal(x, x_other), "conditional-norm",
                f"generator(v, labels) {where} ignores the labels: hand them to the layers spec.generator_norm made "
                "(gantoolkit.layers.LabelledSequential)")
    with chk.step("conditional-norm", f"backward through generator(v, labels) {where}"):
        x.float().square().mean().backward()
    unused = [i for i, layer in enumerate(made) if any(p.grad is None for p in layer.parameters())]
    chk.require(not unused, "conditional-norm",
                f"normalisation layers {unused[:3]} made with spec.generator_norm {where} get no gradient "
                "(are they used in forward?)")


def _check_deterministic_build(chk: _Check, arch: Architecture, info: DataInfo) -> None:
    spec = _spec(info, 0, True)
    states = []
    with torch.random.fork_rng(devices=[]):
        for _ in range(2):
            torch.manual_seed(1234)
            g, d = arch.build(spec)
            states.append({**{f"g.{k}": v for k, v in _state(g).items()},
                           **{f"d.{k}": v for k, v in _state(d).items()}})
    differ = _same_state(*states)
    chk.require(differ is None, "deterministic-build",
                f"two builds for {info.source} after the same torch.manual_seed differ ({differ}); "
                "draw initial weights from torch's global generator only")


# -- losses ---------------------------------------------------------------------------------------------------


@_quiet
def check_loss(
    loss: str | Callable[..., Loss],
    options: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    registry: Registry | None = None,
    train: bool = True,
) -> None:
    """Check a loss's recipe, values, gradients and penalty, then train with it on images and vectors."""
    name, registry = _resolve("loss", loss, name, registry)
    chk = _Check("loss", name)
    obj: Loss = _create(chk, registry, "loss", name, options)
    n_critic = obj.n_critic
    chk.require(isinstance(n_critic, int) and not isinstance(n_critic, bool) and n_critic >= 1, "n-critic",
                f"n_critic must be an int >= 1, got {n_critic!r}")
    chk.require(isinstance(obj.critic_batchnorm, bool), "critic-batchnorm-flag",
                f"critic_batchnorm must be True or False, got {obj.critic_batchnorm!r}")
    chk.require(isinstance(obj.needs_real_scores, bool), "real-scores-flag",
                f"needs_real_scores must be True or False, got {obj.needs_real_scores!r}")
    midpoint = obj.score_midpoint
    chk.require(midpoint is None or (isinstance(midpoint, int | float) and not isinstance(midpoint, bool)
                                     and math.isfinite(midpoint)), "score-midpoint",
                f"score_midpoint must be a finite number or None, got {midpoint!r}")
    _check_optimizer(chk, obj)
    for device in _devices():
        _check_loss_values(chk, obj, device)
    _check_penalty(chk, obj)
    if train:
        for info, cond in ((tiny_info(IMAGE_SHAPE), "onehot"), (tiny_info(VECTOR_SHAPE), "none")):
            config = _config(_partner_arch(info), name, cond, {"loss": dict(options or {})})
            _train_roundtrip(chk, registry, config, tiny_dataset(info.shape))


def _check_optimizer(chk: _Check, loss: Loss) -> None:
    from gantoolkit.training.optim import OPTIMIZERS

    with chk.step("optimizer", "optimizer()"):
        spec = loss.optimizer()
    chk.require(isinstance(spec, OptimizerSpec), "optimizer",
                f"optimizer() must return an OptimizerSpec, got {type(spec).__name__}")
    chk.require(spec.name in OPTIMIZERS, "optimizer",
                f"optimizer() names {spec.name!r}; gantoolkit knows {', '.join(OPTIMIZERS)}")
    chk.require(isinstance(spec.lr, (int, float)) and spec.lr > 0, "optimizer",
                f"optimizer() lr must be > 0, got {spec.lr!r}")
    betas = spec.betas
    chk.require(betas is None or (len(betas) == 2 and all(0 <= b < 1 for b in betas)), "optimizer",
                f"optimizer() betas must be None or two numbers in [0, 1), got {betas!r}")


def _loss_value(chk: _Check, what: str, value: Any, where: str) -> torch.Tensor:
    chk.require(isinstance(value, torch.Tensor) and value.dim() == 0 and value.is_floating_point(), "loss-scalar",
                lambda: f"{what} {where} must return a 0-dim float tensor, got {_shape(value)}")
    chk.require(value.dtype == torch.float32, "dtype", f"{what} {where} returned {value.dtype}, not float32")
    chk.require(bool(torch.isfinite(value)), "finite-losses",
                lambda: f"{what} {where} is {value.item()}; compute it from raw scores (logits), never probabilities")
    return value


def _generator_loss(loss: Loss, fake_scores: torch.Tensor, real_scores: torch.Tensor) -> torch.Tensor:
    """generator_loss as the trainer calls it: with the real scores too when the loss asks for them."""
    if loss.needs_real_scores:
        return cast(Any, loss).generator_loss(fake_scores, real_scores)
    return loss.generator_loss(fake_scores)


def _check_loss_values(chk: _Check, loss: Loss, device: torch.device) -> None:
    rng = torch.Generator().manual_seed(0)
    on = "" if device.type == "cpu" else f" on {device}"
    cases = {
        "for random scores": (torch.randn(8, generator=rng), torch.randn(8, generator=rng)),
        "for scores of +-30": (torch.full((8,), 30.0), torch.full((8,), -30.0)),
        "for scores of -+30": (torch.full((8,), -30.0), torch.full((8,), 30.0)),
    }
    for label, (real0, fake0) in cases.items():
        where = label + on
        real = real0.to(device).requires_grad_(True)
        fake = fake0.to(device).requires_grad_(True)
        with chk.step("loss-scalar", f"discriminator_loss {where}"):
            ld = loss.discriminator_loss(real, fake)
        _loss_value(chk, "discriminator_loss", ld, where)
        chk.require(ld.device.type == device.type, "device", f"discriminator_loss {where} is on {ld.device}")
        with chk.step("gradients", f"the gradient of discriminator_loss {where}"):
            grads = torch.autograd.grad(ld, [real, fake], allow_unused=True)
        chk.require(all(gr is not None for gr in grads), "gradients",
                    f"discriminator_loss {where} must depend on both the real and the fake scores")
        chk.require(all(bool(torch.isfinite(gr).all()) for gr in grads), "gradients",
                    f"discriminator_loss {where} has a NaN or infinite gradient")
        if label == "for random scores":
            chk.require(any(bool(gr.abs().sum() > 0) for gr in grads), "gradients",
                        f"discriminator_loss {where} has a zero gradient")
        fake_g = fake0.to(device).requires_grad_(True)
        with chk.step("loss-scalar", f"generator_loss {where}"):
            lg = _generator_loss(loss, fake_g, real0.to(device))
        _loss_value(chk, "generator_loss", lg, where)
        with chk.step("gradients", f"the gradient of generator_loss {where}"):
            (gg,) = torch.autograd.grad(lg, [fake_g], allow_unused=True)
        chk.require(gg is not None and bool(torch.isfinite(gg).all()), "gradients",
                    f"generator_loss {where} must depend on the fake scores with a finite gradient")
    high, low = torch.ones(8, device=device), -torch.ones(8, device=device)
    with torch.no_grad():
        right, wrong = loss.discriminator_loss(high, low), loss.discriminator_loss(low, high)
        even = torch.zeros(8, device=device)  # the real scores a relativistic loss compares with
        g_high, g_low = _generator_loss(loss, high, even), _generator_loss(loss, low, even)
    chk.require(right < wrong, "score-direction",
                lambda: f"discriminator_loss(real=+1, fake=-1) = {right.item():.4g} is not below "
                        f"discriminator_loss(real=-1, fake=+1) = {wrong.item():.4g}; higher scores must mean 'real'")
    chk.require(g_high < g_low, "score-direction",
                lambda: f"generator_loss(+1) = {g_high.item():.4g} is not below generator_loss(-1) = "
                        f"{g_low.item():.4g}; the generator must want high scores")


def _check_penalty(chk: _Check, loss: Loss) -> None:
    rng = torch.Generator().manual_seed(0)
    for shape in ((2,), (1, 4, 4)):
        critic = nn.Sequential(nn.Flatten(), nn.Linear(int(torch.Size(shape).numel()), 1))
        real = torch.randn(BATCH, *shape, generator=rng)
        fake = torch.randn(BATCH, *shape, generator=rng)
        for step in range(max(2, loss.n_critic)):
            seeded = torch.Generator().manual_seed(step)
            ctx = PenaltyContext(cast(Callable[[torch.Tensor], torch.Tensor], lambda x, c=critic: c(x).view(-1)),
                                 real, fake, seeded, step)
            where = f"for data of shape (B, {', '.join(map(str, shape))}) at critic step {step}"
            with chk.step("penalty", f"penalty() {where}"):
                value = loss.penalty(ctx)
            if value is None:
                continue
            _loss_value(chk, "penalty()", value, where)
            critic.zero_grad(set_to_none=True)
            with chk.step("penalty", f"backward through penalty() {where}"):
                value.backward()
            grads = [p.grad for p in critic.parameters() if p.grad is not None]
            chk.require(grads and all(bool(torch.isfinite(gr).all()) for gr in grads), "penalty",
                        f"penalty() {where} does not reach the critic's parameters with finite gradients")
        with chk.step("after-step", "after_discriminator_step(critic)"):
            loss.after_discriminator_step(critic)
    _check_penalty_loss_scale(chk, loss)


class _GradientGain(torch.autograd.Function):
    """The identity, whose gradient is multiplied by `GAIN` on the way back (twice differentiable)."""

    GAIN = 1e8

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad * _GradientGain.GAIN


class _SmallScoreCritic(nn.Module):
    """Scores of about 1e-8 whose input gradients are of order 1 (norm 3): on the way back through the fp16 linear
    layer the gradient is 1e-8, below fp16's smallest number, so only a loss-scaled gradient keeps it."""

    def __init__(self, inputs: int, rng: torch.Generator) -> None:
        super().__init__()
        self.linear = nn.Linear(inputs, 1)
        with torch.no_grad():
            weight = torch.randn(1, inputs, generator=rng)
            self.linear.weight.copy_(weight * 3 / weight.norm())
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(_GradientGain.apply(x.flatten(1))).float().view(-1) / _GradientGain.GAIN


def _check_penalty_loss_scale(chk: _Check, loss: Loss) -> None:
    """The penalty under fp16 autocast with a loss scaler (what `--amp` gives on GPUs without bf16) against its fp32
    value, on a critic whose gradients vanish in fp16 unless scaled: a penalty that calls `torch.autograd.grad`
    itself instead of `ctx.gradients` gets none there, and is weaker (or gone) under fp16."""
    rng = torch.Generator().manual_seed(0)
    for shape in ((2,), (1, 4, 4)):
        critic = _SmallScoreCritic(int(torch.Size(shape).numel()), rng)
        real, fake = torch.randn(BATCH, *shape, generator=rng), torch.randn(BATCH, *shape, generator=rng)
        where = f"for data of shape (B, {', '.join(map(str, shape))})"
        for step in range(max(2, loss.n_critic)):  # the first step with a penalty (lazy ones skip some)
            exact = loss.penalty(PenaltyContext(critic, real, fake, torch.Generator().manual_seed(step), step))
            if exact is not None:
                _compare_under_fp16(chk, loss, PenaltyContext(critic, real, fake, torch.Generator().manual_seed(step),
                                                               step, torch.amp.GradScaler("cpu", init_scale=2.0**16)),
                                    exact.item(), where)
                break


def _compare_under_fp16(chk: _Check, loss: Loss, ctx: PenaltyContext, exact: float, where: str) -> None:
    with chk.step("penalty-loss-scale", f"penalty() {where} under fp16 autocast with a loss scaler"), \
            autocast(torch.device("cpu"), torch.float16):
        half = loss.penalty(ctx)
    if not isinstance(half, torch.Tensor) or half.dim() != 0:
        chk.fail("penalty-loss-scale", f"penalty() {where} under fp16 returned {_shape(half)}, not a scalar")
    value = half.float().item()
    chk.require(math.isclose(exact, value, rel_tol=0.05, abs_tol=1e-6), "penalty-loss-scale",
                f"penalty() {where} is {value:.4g} under fp16 with a loss scaler but {exact:.4g} in fp32, on a critic "
                "whose input gradients underflow in fp16 unless scaled: take them with ctx.gradients(output, inputs), "
                "which applies ctx.scaler")


# -- conditionings ------------------------------------------------------------------------------------------


@_quiet
def check_conditioning(
    conditioning: str | Callable[..., Conditioning],
    options: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    registry: Registry | None = None,
    train: bool = True,
) -> None:
    """Check a conditioning scheme on labelled images and vectors, then train with it."""
    name, registry = _resolve("conditioning", conditioning, name, registry)
    chk = _Check("conditioning", name)
    supported = []
    for shape in (IMAGE_SHAPE, VECTOR_SHAPE):
        cond: Conditioning = _create(chk, registry, "conditioning", name, options)
        info = tiny_info(shape)
        try:
            cond.setup(info)
        except ConfigError:
            continue
        except Exception as e:
            chk.fail("setup", f"setup() for {info.source} raised {type(e).__name__}: {_first_line(e)}")
        supported.append(info)
        for device in _devices():
            _check_conditioning_parts(chk, cond, info, device)
    chk.require(supported, "setup", "setup() refuses both labelled images and labelled vectors")
    if train:
        for info in supported:
            config = _config(_partner_arch(info), "bce", name, {"cond": dict(options or {})})
            _train_roundtrip(chk, registry, config, tiny_dataset(info.shape))


def _check_conditioning_parts(chk: _Check, cond: Conditioning, info: DataInfo, device: torch.device) -> None:
    where = f"for {info.source}" + ("" if device.type == "cpu" else f" on {device}")
    requires = cond.requires_labels
    chk.require(isinstance(requires, bool), "setup", f"requires_labels must be True or False, got {requires!r}")
    gx, dx = cond.generator_extra_dim, cond.discriminator_extra_channels
    for attr, value in (("generator_extra_dim", gx), ("discriminator_extra_channels", dx)):
        chk.require(isinstance(value, int) and not isinstance(value, bool) and value >= 0, "extra-dims",
                    f"{attr} {where} must be an int >= 0, got {value!r}")
    rng = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 2, 0], device=device)
    other = torch.tensor([1, 2, 0, 2], device=device)
    x = torch.rand(BATCH, *info.shape, generator=rng).to(device) * 2 - 1
    with chk.step("generator-module", f"generator_module() {where}"):
        g_module = cond.generator_module()
    chk.require(g_module is None or isinstance(g_module, nn.Module), "generator-module",
                f"generator_module {where} must return None or an nn.Module, got {type(g_module).__name__}")
    if g_module is not None:
        g_module.to(device)

    def vector(y: torch.Tensor) -> torch.Tensor | None:
        if not gx:
            return None
        with chk.step("generator-vector", f"generator_vector {where}"):
            out = cond.generator_vector(y) if g_module is None else cond.generator_vector(y, g_module)
        chk.require(isinstance(out, torch.Tensor) and tuple(out.shape) == (BATCH, gx) and out.is_floating_point(),
                    "generator-vector", f"generator_vector {where} must return B x {gx} floats, got {_shape(out)}")
        assert out is not None  # chk.require raised otherwise
        chk.require(out.device.type == device.type, "device", f"generator_vector {where} is on {out.device}")
        return out

    def d_input(y: torch.Tensor) -> torch.Tensor:
        with chk.step("discriminator-input", f"discriminator_input {where}"):
            out = cond.discriminator_input(x, y)
        want = (BATCH, info.shape[0] + dx, *info.shape[1:])
        chk.require(isinstance(out, torch.Tensor) and tuple(out.shape) == want, "discriminator-input",
                    f"discriminator_input {where} must return shape {want}, got {_shape(out)}")
        chk.require(out.dtype == x.dtype and out.device.type == device.type, "discriminator-input",
                    f"discriminator_input {where} returned {out.dtype} on {out.device}, not x's {x.dtype}")
        return out

    with chk.step("critic-module", f"critic_module(16) {where}"):
        module = cond.critic_module(16)
    chk.require(module is None or isinstance(module, nn.Module), "critic-module",
                f"critic_module {where} must return None or an nn.Module, got {type(module).__name__}")
    if module is not None:
        module.to(device)
    norm = _conditioning_norm(chk, cond, device, where)

    def normed(y: torch.Tensor) -> list[torch.Tensor]:
        if norm is None:
            return []
        outs = []
        for shape in ((BATCH, 8, 4, 4), (BATCH, 8)):
            h = torch.randn(*shape, generator=torch.Generator().manual_seed(3)).to(device)
            with chk.step("norm-layer", f"norm_layer(8) on {_bshape(h)} {where}"):
                out = norm(h, y)
            chk.require(isinstance(out, torch.Tensor) and out.shape == h.shape and out.dtype == h.dtype, "norm-layer",
                        f"norm_layer(8) {where} must map (x, labels) to x's shape {_bshape(h)} and dtype, "
                        f"got {_bshape(out)}")
            chk.require(bool(torch.isfinite(out).all()), "norm-layer", f"norm_layer(8) {where} returned NaN or inf")
            outs.append(out)
        return outs

    def score(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        head = torch.randn(BATCH, generator=torch.Generator().manual_seed(1)).to(device).requires_grad_(True)
        feats = torch.randn(BATCH, 16, generator=torch.Generator().manual_seed(2)).to(device).requires_grad_(True)
        with chk.step("score", f"score() {where}"):
            out = cond.score(head, feats, y, module)
        chk.require(isinstance(out, torch.Tensor) and tuple(out.shape) == (BATCH,), "score",
                    f"score() {where} must return shape (B,), got {_shape(out)}")
        chk.require(bool(torch.isfinite(out).all()), "score", f"score() {where} returned NaN or inf")
        return out, head, feats

    gv, di, nv, (sc, head, _) = vector(labels), d_input(labels), normed(labels), score(labels)
    with chk.step("score", f"backward through score() {where}"):
        sc.sum().backward()
    chk.require(head.grad is not None and bool(head.grad.abs().sum() > 0), "score",
                f"score() {where} must still depend on the discriminator's head score")
    terms = [t for t in _conditioning_terms(chk, cond, module, info, labels, device, where) if t.requires_grad]
    if terms:
        with chk.step("conditioning-terms", f"backward through the loss terms {where}"):
            torch.stack(terms).sum().backward()
    if module is not None:
        for pname, p in module.named_parameters():
            chk.require(not p.requires_grad or p.grad is not None, "gradients",
                        f"critic_module parameter {pname!r} {where} receives no gradient through score() or the "
                        "loss terms")
    if g_module is not None:
        if gv is not None and gv.requires_grad:
            with chk.step("generator-module", f"backward through generator_vector {where}"):
                gv.sum().backward()
        for pname, p in g_module.named_parameters():
            chk.require(not p.requires_grad or p.grad is not None, "generator-module",
                        f"generator_module parameter {pname!r} {where} receives no gradient through "
                        "generator_vector(labels, module)")
    if norm is not None:
        if all(o.requires_grad for o in nv):
            with chk.step("norm-layer", f"backward through norm_layer(8) {where}"):
                torch.stack([o.square().mean() for o in nv]).sum().backward()
        for pname, p in norm.named_parameters():
            chk.require(not p.requires_grad or p.grad is not None, "norm-layer",
                        f"norm_layer(8) parameter {pname!r} {where} receives no gradient")
    with chk.step("sample-labels", f"sample_labels {where}"):
        first = cond.sample_labels(7, torch.Generator(device=device).manual_seed(0), device)
        second = cond.sample_labels(7, torch.Generator(device=device).manual_seed(0), device)
    if not requires:
        chk.require(first is None, "sample-labels", f"sample_labels {where} of an unconditional scheme must be None")
        return
    chk.require(isinstance(first, torch.Tensor) and first.dtype == torch.int64 and tuple(first.shape) == (7,),
                "sample-labels", f"sample_labels(7) {where} must return int64 of shape (7,), got {_shape(first)}")
    assert first is not None  # chk.require raised otherwise
    chk.require(bool(((first >= 0) & (first < info.num_classes)).all()), "sample-labels",
                f"sample_labels {where} returned labels outside 0..{info.num_classes - 1}")
    chk.require(torch.equal(first, cast(torch.Tensor, second)), "sample-labels",
                f"sample_labels {where} ignores its generator's seed")
    gv2, di2, nv2, (sc2, _, _) = vector(other), d_input(other), normed(other), score(other)
    used = ((gv is not None and not torch.equal(gv, cast(torch.Tensor, gv2))) or not torch.equal(di, di2)
            or not torch.equal(sc, sc2) or any(not torch.equal(a, b) for a, b in zip(nv, nv2, strict=True)))
    chk.require(used, "labels-used",
                f"changing the labels {where} changes neither generator_vector, discriminator_input, score() "
                "nor the normalisation layers")


def _conditioning_norm(chk: _Check, cond: Conditioning, device: torch.device, where: str) -> nn.Module | None:
    """The scheme's normalisation layer for 8 channels (in training mode), or None when it brings none."""
    flag = cond.conditional_norm
    chk.require(isinstance(flag, bool), "norm-layer", f"conditional_norm must be True or False, got {flag!r}")
    if not flag:
        return None
    with chk.step("norm-layer", f"norm_layer(8) {where}"):
        layer = cond.norm_layer(8)
    chk.require(isinstance(layer, nn.Module), "norm-layer",
                f"norm_layer(8) {where} must return an nn.Module, got {type(layer).__name__}")
    return layer.to(device).train()


def _conditioning_terms(chk: _Check, cond: Conditioning, module: nn.Module | None, info: DataInfo,
                        labels: torch.Tensor, device: torch.device, where: str) -> list[torch.Tensor]:
    """The scheme's loss terms on a critic step's and a generator step's context (None terms left out)."""
    rng = torch.Generator().manual_seed(4)
    fake = (torch.rand(BATCH, *info.shape, generator=rng) * 2 - 1).to(device)
    real = (torch.rand(BATCH, *info.shape, generator=rng) * 2 - 1).to(device)
    fake_h = torch.randn(BATCH, 16, generator=rng).to(device).requires_grad_(True)
    real_h = torch.randn(BATCH, 16, generator=rng).to(device).requires_grad_(True)
    contexts = _term_contexts(fake, fake_h, None, labels, module, real, real_h)
    terms = []
    for method, ctx in contexts.items():
        with chk.step("conditioning-terms", f"{method} {where}"):
            term = getattr(cond, method)(ctx)
        if term is not None:
            terms.append(_loss_value(chk, method, term, where))
    return terms


def _term_contexts(fake: torch.Tensor, fake_h: torch.Tensor, codes: torch.Tensor | None, labels: torch.Tensor,
                   module: nn.Module | None, real: torch.Tensor, real_h: torch.Tensor) -> dict[str, ControllerContext]:
    """A critic step's and a generator step's context for a loss term, with a stand-in critic (a fixed linear score
    of the data plus the label's index) that is differentiable in x."""
    rng = torch.Generator(device=fake.device).manual_seed(5)
    weights = torch.randn(fake[0].numel(), generator=torch.Generator().manual_seed(6)).to(fake.device)

    def critic(x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        shift = 0.0 if y is None else y.to(x.dtype)
        return x.flatten(1) @ weights.to(x.dtype) + shift

    scores = critic(fake, labels), critic(real, labels)
    return {
        "discriminator_term": ControllerContext(fake, fake_h, codes, labels, module, real, real_h, labels,
                                                *scores, critic, rng),
        "generator_term": ControllerContext(fake, fake_h, codes, labels, module, fake_scores=scores[0],
                                            critic=critic, generator=rng),
    }


# -- controllers ----------------------------------------------------------------------------------------------


@_quiet
def check_controller(
    controller: str | Callable[..., Any],
    options: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    registry: Registry | None = None,
    train: bool = True,
) -> None:
    """Check a training controller (`gantoolkit.components.TrainingController`), then train with it."""
    name, registry = _resolve("controller", controller, name, registry)
    chk = _Check("controller", name)
    spec, _ = registry.get("controller", name)
    _create(chk, registry, "controller", name, options)  # a TrainingController (direction finders have their hook)
    supported = []
    for shape in (IMAGE_SHAPE, VECTOR_SHAPE):
        info = tiny_info(shape)
        ctrl: TrainingController = spec.create(options)
        try:
            ctrl.setup(info, LATENT)
        except ConfigError:
            continue
        except Exception as e:
            chk.fail("setup", f"setup() for {info.source} raised {type(e).__name__}: {_first_line(e)}")
        supported.append(info)
        _check_controller_parts(chk, ctrl, info)
    chk.require(supported, "setup", "setup() refuses both labelled images and labelled vectors")
    if train:
        for info in supported:
            config = _config(_partner_arch(info), "bce", "onehot", {name: dict(options or {})}, controllers=[name])
            _train_roundtrip(chk, registry, config, tiny_dataset(info.shape))


def _check_controller_parts(chk: _Check, ctrl: TrainingController, info: DataInfo) -> None:
    where = f"for {info.source}"
    code_dim = ctrl.code_dim
    chk.require(isinstance(code_dim, int) and not isinstance(code_dim, bool) and code_dim >= 0, "extra-dims",
                f"code_dim {where} must be an int >= 0, got {code_dim!r}")
    cpu = torch.device("cpu")
    with chk.step("codes", f"sample_codes {where}"):
        codes = ctrl.sample_codes(BATCH, torch.Generator().manual_seed(0), cpu)
        again = ctrl.sample_codes(BATCH, torch.Generator().manual_seed(0), cpu)
    if code_dim == 0:
        chk.require(codes is None, "codes", f"sample_codes {where} must return None when code_dim is 0")
    else:
        chk.require(isinstance(codes, torch.Tensor) and tuple(codes.shape) == (BATCH, code_dim)
                    and codes.is_floating_point(), "codes",
                    f"sample_codes(n) {where} must return n x {code_dim} floats, got {_shape(codes)}")
        assert codes is not None  # chk.require raised otherwise
        chk.require(torch.equal(codes, cast(torch.Tensor, again)), "codes",
                    f"sample_codes {where} ignores its generator's seed")
    with chk.step("critic-module", f"critic_module(16) {where}"):
        module = ctrl.critic_module(16)
    chk.require(module is None or isinstance(module, nn.Module), "critic-module",
                f"critic_module {where} must return None or an nn.Module, got {type(module).__name__}")
    rng = torch.Generator().manual_seed(1)
    labels = torch.tensor([0, 1, 2, 0])
    fake = torch.rand(BATCH, *info.shape, generator=rng) * 2 - 1
    fake_h = torch.randn(BATCH, 16, generator=rng, requires_grad=True)
    real = torch.rand(BATCH, *info.shape, generator=rng) * 2 - 1
    real_h = torch.randn(BATCH, 16, generator=rng, requires_grad=True)
    contexts = _term_contexts(fake, fake_h, codes, labels, module, real, real_h)
    for method, ctx in contexts.items():
        with chk.step("controller-terms", f"{method} {where}"):
            term = getattr(ctrl, method)(ctx)
        if term is not None:
            _loss_value(chk, method, term, where)


# -- datasets -------------------------------------------------------------------------------------------------


def _load_registered(chk: _Check, registry: Registry, name: str, options: dict[str, Any] | None,
                     image_size: int | None, data_root: Path | None = None) -> Dataset:
    spec, argument = registry.get("dataset", name)
    try:
        bound = spec.bind(options)
    except GanToolkitError as e:
        chk.fail("options", str(e))
    with chk.step("factory-type", f"{name}(**options)"):
        source = spec.load()(**bound)
    chk.require(isinstance(source, DataSource), "factory-type",
                f"the factory built a {type(source).__name__}, not a gantoolkit DataSource")
    request = DataRequest(argument=argument, image_size=image_size, data_root=data_root or Path("data"))
    try:
        dataset = source.load(request)
    except DataError as e:  # a clear, user-fixable refusal: files missing here, a download needed, ...
        raise ComponentUnavailable(f"dataset {name!r} cannot be loaded here: {e}") from e
    except Exception as e:
        chk.fail("dataset-returns", f"load() raised {type(e).__name__}: {_first_line(e)}; refuse with DataError")
    chk.require(isinstance(dataset, Dataset) and isinstance(dataset.info, DataInfo), "dataset-returns",
                f"load() must return a gantoolkit Dataset with a DataInfo, got {type(dataset).__name__}")
    return dataset


@_quiet
def check_dataset(
    dataset: str | Callable[..., DataSource],
    options: dict[str, Any] | None = None,
    *,
    argument: str | None = None,
    name: str | None = None,
    registry: Registry | None = None,
    data_root: str | Path | None = None,
    train: bool = True,
) -> None:
    """Load a dataset (`argument` for `name:ARGUMENT` datasets) and check its tensors and description, then train
    a small model on it. A `DataError` on load (files missing, a download needed) raises `ComponentUnavailable`."""
    if isinstance(dataset, str) and argument is not None:
        dataset = f"{dataset}:{argument}"
    full, registry = _resolve("dataset", dataset, name, registry, argument)
    chk = _Check("dataset", full)
    root = Path(data_root) if data_root is not None else None
    data = _load_registered(chk, registry, full, options, None, root)
    info = data.info
    chk.require(info.modality in (IMAGE, VECTOR), "dataset-returns",
                f"info.modality must be {IMAGE!r} or {VECTOR!r}, got {info.modality!r}")
    _check_dataset_tensors(chk, data)
    with chk.step("info-json", "DataInfo.to_json -> json -> from_json"):
        back = DataInfo.from_json(json.loads(json.dumps(info.to_json())))
    chk.require(back == info, "info-json", "DataInfo changes in the JSON round trip (keep `extra` JSON-simple)")
    again = _load_registered(chk, registry, full, options, None, root)
    chk.require(again.data.shape == data.data.shape and torch.equal(again.data, data.data)
                and (data.labels is None or torch.equal(cast(torch.Tensor, again.labels), data.labels)),
                "deterministic-load", "two loads with the same request give different data")
    if info.is_image:
        small = _load_registered(chk, registry, full, options, 8, root)
        chk.require(tuple(small.info.shape[1:]) == (8, 8) and tuple(small.data.shape[2:]) == (8, 8),
                    "image-size", f"DataRequest(image_size=8) gave images of shape {tuple(small.info.shape)}")
        _check_dataset_tensors(chk, small)
        data = small
    if train:
        cond = "onehot" if data.info.labelled else "none"
        _train_roundtrip(chk, registry, _config(_partner_arch(data.info), "bce", cond, None), _subset(data))


def _subset(data: Dataset, n: int = 256) -> Dataset:
    """The first n examples (enough for a few steps; keeps big datasets fast to train on)."""
    return Dataset(data.info, data.data[:n], data.labels[:n] if data.labels is not None else None)


def _check_dataset_tensors(chk: _Check, data: Dataset) -> None:
    info, x, y = data.info, data.data, data.labels
    n = len(x)
    if info.is_image:
        chk.require(len(info.shape) == 3 and x.dtype == torch.uint8 and tuple(x.shape[1:]) == tuple(info.shape),
                    "dataset-tensors", f"images must be uint8 N x {' x '.join(map(str, info.shape))}, "
                                       f"got {x.dtype} {_shape(x)}")
    else:
        chk.require(x.dtype == torch.float32 and tuple(x.shape[1:]) == tuple(info.shape), "dataset-tensors",
                    f"vectors must be float32 N x {' x '.join(map(str, info.shape))}, got {x.dtype} {_shape(x)}")
        chk.require(bool(torch.isfinite(x).all()), "dataset-tensors", "vectors contain NaN or infinite values")
    if info.num_classes == 0:
        chk.require(y is None, "labels", "an unlabelled dataset (num_classes 0) must have labels=None")
        return
    chk.require(y is not None and y.dtype == torch.int64 and tuple(y.shape) == (n,), "labels",
                f"labels must be int64 of shape (N,) = ({n},), got {None if y is None else y.dtype} {_shape(y)}")
    assert y is not None  # chk.require raised otherwise
    chk.require(bool(((y >= 0) & (y < info.num_classes)).all()), "labels",
                f"labels must lie in 0..{info.num_classes - 1}")
    chk.require(len(info.class_names) in (0, info.num_classes), "labels",
                f"{len(info.class_names)} class names for {info.num_classes} classes")


# -- configs and commands ---------------------------------------------------------------------------------------


@_quiet
def check_metric(
    metric: str | Callable[..., Any],
    options: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    registry: Registry | None = None,
) -> None:
    """Compute a metric (`gantoolkit.evaluation.Metric`) on every kit context it applies to: labelled 2-D vectors,
    labelled 1x8x8 images, and the toy:ring mixture, with uniform-noise "samples"."""
    from gantoolkit.evaluation import EvalContext

    name, registry = _resolve("metric", metric, name, registry)
    chk = _Check("metric", name)
    obj = _create(chk, registry, "metric", name, options)
    keys = obj.keys
    chk.require(isinstance(keys, tuple) and keys and all(isinstance(k, str) for k in keys), "metric-keys",
                f"keys must be a non-empty tuple of names, got {keys!r}")
    datasets = [tiny_dataset(VECTOR_SHAPE, n=128), tiny_dataset((1, 8, 8), n=128)]
    if "toy" in registry.specs["dataset"]:
        datasets.append(_subset(_load_registered(chk, registry, "toy:ring", {"n": 512}, None), 128))
    applied = []
    with tempfile.TemporaryDirectory(prefix="gantool-conformance-cache-") as cache:
        for data in datasets:
            def sample(n: int, seed: int, shape: tuple[int, ...] = data.info.shape) -> tuple[torch.Tensor, Any]:
                noise = torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1
                return noise, torch.arange(n) % CLASSES

            def context(data: Dataset = data, sample: Any = sample) -> Any:
                return EvalContext(data, sample, conditional=True, n=96, seed=0, cache_dir=Path(cache))

            where = f"on {data.info.source}"
            with chk.step("metric-why-not", f"why_not {where}"):
                reason = obj.why_not(context())
            chk.require(reason is None or (isinstance(reason, str) and reason.strip()), "metric-why-not",
                        f"why_not {where} must return None or a reason, got {reason!r}")
            if reason is not None:
                continue
            applied.append(data.info.source)
            with chk.step("metric-values", f"compute {where}"):
                first = obj.compute(context())
                second = obj.compute(context()) if len(applied) == 1 else first  # determinism: once is enough
            chk.require(isinstance(first, dict) and first and set(first) <= set(keys), "metric-values",
                        f"compute {where} must return values for its keys {keys}, got {first!r:.100}")
            for key, value in first.items():
                number = value.item() if isinstance(value, torch.Tensor) and value.dim() == 0 else value
                chk.require(number is None or (isinstance(number, (int, float)) and not isinstance(number, bool)),
                            "metric-values", f"compute {where}: {key} = {value!r:.60} is not a number or None")
            chk.require(_defined(first) == _defined(second), "metric-deterministic",
                        f"compute {where} gave {first} and then {second} for the same samples")
    if not applied:
        raise ComponentUnavailable(f"metric {name!r} applies to none of the kit's data (vectors, 1x8x8 images, "
                                   "toy:ring); test it on data it applies to")


def _defined(values: dict[str, Any]) -> dict[str, Any]:
    """Metric values as reported: tensors as numbers, NaN and inf as None (undefined)."""
    out = {}
    for key, value in values.items():
        number = value.item() if isinstance(value, torch.Tensor) else value
        out[key] = number if isinstance(number, int) or (isinstance(number, float) and math.isfinite(number)) else None
    return out


@_quiet
def check_sampler(
    sampler: str | Callable[..., Any],
    options: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    registry: Registry | None = None,
) -> None:
    """Set a sampler up on generators trained a step with built-in partners (toy:ring vectors, unconditional;
    8x8 digits, one-hot conditional; `SamplerContext.training_data()` loads them) and draw from it."""
    from gantoolkit.components import Sampler, SamplerContext
    from gantoolkit.sampling.generator import load_generator

    name, registry = _resolve("sampler", sampler, name, registry)
    chk = _Check("sampler", name)
    _create(chk, registry, "sampler", name, options)
    cases = [("toy:ring", {"n": 512}, None, "none"), ("digits", {}, 8, "onehot")]
    with tempfile.TemporaryDirectory(prefix="gantool-conformance-sampler-") as tmp:
        for data, data_options, size, cond in cases:
            path = _trained_checkpoint(chk, registry, data, data_options, size, cond, Path(tmp) / cond)
            where = f"on a generator of {data} ({cond} conditioning)"
            with use_registry(registry):
                model = load_generator(path)
                requests = [(None, "")] + ([(3, " for --class 3")] if model.conditional else [])
                for class_index, asked in requests:
                    runs = []
                    for _ in range(2):  # two samplers set up alike must draw alike
                        obj: Sampler = _create(chk, registry, "sampler", name, options)
                        try:
                            with chk.step("sampler-setup", f"setup() {where}{asked}"):
                                obj.setup(SamplerContext(model, 0, class_index))
                        except ConformanceError as e:
                            if class_index is not None and "ConfigError" in e.detail:
                                break  # it refuses --class, as it may
                            raise
                        with chk.step("sampler-samples", f"sample(5, seed=1) {where}{asked}"):
                            runs.append(obj.sample(5, 1))
                        _check_drawn(chk, runs[-1], model, class_index, f"{where}{asked}")
                        with chk.step("sampler-describe", f"describe() {where}"):
                            line = obj.describe()
                        chk.require(isinstance(line, str) and line.strip() and "\n" not in line.strip(),
                                    "sampler-describe", f"describe() {where} must return one line, got {line!r:.80}")
                    if len(runs) == 2:
                        chk.require(torch.equal(runs[0][0], runs[1][0]), "sampler-deterministic",
                                    f"two samplers set up alike {where}{asked} drew different samples for seed 1")


def _trained_checkpoint(chk: _Check, registry: Registry, data: str, options: dict[str, Any], image_size: int | None,
                        cond: str, directory: Path, controllers: Sequence[str] = ()) -> Path:
    """A training checkpoint (critic included) of built-in partners, and `controllers`, trained two steps on a
    registered dataset."""
    from gantoolkit.files.runs import create_run_dir
    from gantoolkit.models import build_models
    from gantoolkit.training.trainer import Trainer

    dataset = _load_registered(chk, registry, data, options, image_size)
    config = _config(_partner_arch(dataset.info), "bce", cond, {}, controllers=controllers)
    config.data, config.image_size = Choice(data, dict(options)), image_size
    with use_registry(registry), torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        with chk.step("build-models", f"training a {config.arch.name} on {data} to sample from"):
            trainer = Trainer(build_models(config, dataset.info, registry), dataset,
                              create_run_dir(directory / "run", "conformance"), torch.device("cpu"))
            for _ in range(2):
                trainer.train_step()
                trainer.step += 1
            return Path(trainer.save_checkpoint())


@_quiet
def check_direction_finder(
    finder: str | Callable[..., Any],
    options: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    registry: Registry | None = None,
) -> None:
    """Find directions on generators trained two steps with built-in partners (conditional 8x8 digits, toy:ring
    vectors), trained with the finder as their controller too when it is one (InfoGAN finds its own codes), then
    keep them in a file and move samples along each of them as `gantool sample --direction` does. A `ConfigError`
    from `find` means the finder cannot read that generator; refusing both makes it unavailable here."""
    from gantoolkit.controllers.directions import direction_strip, find_directions, load_directions, save_directions
    from gantoolkit.sampling.generator import load_generator

    name, registry = _resolve("finder", finder, name, registry)
    chk = _Check("direction finder", name)
    _create(chk, registry, "finder", name, options)
    controllers = (name,) if name in registry.specs["controller"] else ()
    read = []
    with tempfile.TemporaryDirectory(prefix="gantool-conformance-finder-") as tmp:
        for data, data_options, size, cond in (("digits", {}, 8, "onehot"), ("toy:ring", {"n": 512}, None, "none")):
            folder = Path(tmp) / cond
            path = _trained_checkpoint(chk, registry, data, data_options, size, cond, folder, controllers)
            where = f"on a generator of {data}" + (f" trained with --controller {name}" if controllers else "")
            with use_registry(registry):
                model = load_generator(path)
                runs = []
                for _ in range(2):
                    obj = _create(chk, registry, "finder", name, options)
                    try:
                        runs.append(find_directions(obj, model, name))
                    except ConfigError:
                        break  # this method cannot read this generator (it said how)
                    except GanToolkitError as e:
                        chk.fail("finder-directions", f"{where}: {e}")
                    except Exception as e:
                        chk.fail("finder-directions", f"find() {where} raised {type(e).__name__}: {_first_line(e)}")
                if not runs:
                    continue
                read.append(data)
                first, second = runs
                chk.require(first.all_names == second.all_names and torch.equal(first.vectors, second.vectors),
                            "finder-deterministic", f"find() {where} gave different directions the second time")
                file = folder / "directions.safetensors"
                with chk.step("finder-file", f"saving and loading the directions {where}"):
                    save_directions(file, first)
                    again = load_directions(file, model)
                chk.require(again.all_names == first.all_names and torch.equal(again.vectors, first.vectors.float()),
                            "finder-file", f"the directions {where} changed in their file")
                for direction in first.all_names:
                    with chk.step("finder-usable", f"sample --direction {direction} {where}"):
                        moved, _, cols = direction_strip(model, f"{file}:{direction}", [-2.0, 2.0], 2, seed=1)
                    columns = moved.view(2, cols, -1)
                    chk.require(cols >= 2 and not torch.equal(columns[:, 0], columns[:, -1]), "finder-usable",
                                f"moving along {direction!r} {where} leaves the samples as they are")
    if not read:
        raise ComponentUnavailable(f"direction finder {name!r} refuses the kit's generators (digits, toy:ring) with "
                                   "ConfigError; check it with options=..., or on your own checkpoint")


def _check_drawn(chk: _Check, drawn: Any, model: Any, class_index: int | None, where: str) -> None:
    ok = isinstance(drawn, tuple) and len(drawn) == 2 and isinstance(drawn[0], torch.Tensor)
    chk.require(ok, "sampler-samples", f"sample() {where} must return (samples, labels), got {type(drawn).__name__}")
    x, y = drawn
    shape = (5, *model.data.shape)
    chk.require(tuple(x.shape) == shape and x.dtype == torch.float32 and x.device.type == "cpu", "sampler-samples",
                lambda: f"sample(5) {where} returned {_shape(x)} {x.dtype} on {x.device}, expected float32 "
                        f"{_shape(torch.empty(shape))} on the CPU")
    chk.require(bool(torch.isfinite(x).all()), "sampler-samples", f"sample() {where} returned NaN or infinite values")
    if model.data.is_image:
        chk.require(x.min() >= -1 and x.max() <= 1, "sampler-samples",
                    lambda: f"sampled images {where} span [{x.min():.3g}, {x.max():.3g}], not [-1, 1]")
    if not model.conditional:
        chk.require(y is None, "sampler-samples", f"sample() {where} returned labels for an unconditional model")
        return
    chk.require(isinstance(y, torch.Tensor) and y.dtype == torch.int64 and tuple(y.shape) == (5,)
                and bool(((y >= 0) & (y < model.data.num_classes)).all()), "sampler-samples",
                lambda: f"sample(5) {where} must return int64 (5,) labels in [0, {model.data.num_classes}), got "
                        f"{_shape(y)}")
    if class_index is not None:
        chk.require(bool((y == class_index).all()), "sampler-class",
                    lambda: f"sample() {where} returned labels {y.tolist()}, not only {class_index}")


def check_config(config: str, *, registry: Registry | None = None) -> None:
    """A preset must be a table of settings naming registered components."""
    name, registry = _resolve("config", config, None, registry)
    chk = _Check("config", name)
    spec, _ = registry.get("config", name)
    values = spec.factory
    chk.require(isinstance(values, dict), "config-valid",
                f"a preset must be a dict of settings, got {type(values).__name__}")
    try:
        run = apply_layer(RunConfig(), values, f"config {name!r}").validate()
    except GanToolkitError as e:
        chk.fail("config-valid", str(e))
    for kind in KINDS.values():
        if kind.setting is None:
            continue
        chosen = getattr(run, kind.setting)
        for choice in chosen if isinstance(chosen, list) else [chosen]:
            try:
                registry.get(kind.name, choice.name)
            except GanToolkitError as e:
                chk.fail("config-components", str(e))


def check_logger(
    logger: str | Callable[..., Any],
    options: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    registry: Registry | None = None,
) -> None:
    """A logger must take a whole session's records (start, scalars, a sample grid, a rollback, close) and a resumed
    session's, without raising, writing only inside the run directory."""
    from gantoolkit.files.images import png_bytes

    name, registry = _resolve("logger", logger, name, registry)
    chk = _Check("logger", name)
    config = {**RunConfig().to_json(), "components": {}}
    png = png_bytes(torch.zeros(3, 8, 8, dtype=torch.uint8))
    with tempfile.TemporaryDirectory(prefix="gantool-conformance-logger-") as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        for start in (0, 10):  # a new run, then the same run resumed at step 10
            obj = _create(chk, registry, "logger", name, options)
            with chk.step("logger-session", f"a session from step {start}"):
                obj.start(run, config, start)
                for step in range(start + 5, start + 25, 5):
                    obj.scalars(step, {"loss_d": 1.0, "loss_g": 0.5, "penalty": 0.0, "lr_g": 1e-4, "lr_d": 1e-4,
                                       "it_per_s": 10.0})
                obj.image(start + 20, f"step-{start + 20:08d}.png", png)
                obj.event(start + 20, {"step": start + 20, "event": "rollback", "bad_step": start + 22})
                obj.close()
        outside = sorted(p.name for p in Path(tmp).iterdir() if p.name != "run")
        chk.require(not outside, "logger-session", lambda: f"it wrote outside the run directory: {outside}")


def _check_augmentation_on(chk: _Check, built: Callable[[], Any], device: torch.device) -> None:
    """The augmentation's rules on `device`."""
    where = "" if device.type == "cpu" else f" on {device}"
    obj = built()
    chk.require(isinstance(obj.reads_score_sign, bool), "augment-sign-flag",
                f"reads_score_sign must be True or False, got {obj.reads_score_sign!r}")
    x = (torch.rand(2 * BATCH, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)
    x.requires_grad_(True)
    before = torch.get_rng_state()
    with chk.step("augment-output", f"augment(x){where}"):
        out = obj.augment(x, torch.Generator(device=device).manual_seed(5))
    chk.require(isinstance(out, torch.Tensor) and out.shape == x.shape and out.dtype == x.dtype
                and out.device == x.device, "augment-output",
                lambda: f"augment(x){where} returned {_shape(out)} {getattr(out, 'dtype', '')} for "
                        f"{_shape(x)} {x.dtype} on {x.device}")
    chk.require(bool(torch.isfinite(out).all()), "augment-output", f"augment(x){where} returned NaN or inf")
    chk.require(torch.equal(torch.get_rng_state(), before), "augment-seeded",
                f"augment(x){where} drew from torch's global RNG; draw from the generator it is given")
    again = obj.augment(x, torch.Generator(device=device).manual_seed(5))
    chk.require(torch.equal(out, again), "augment-seeded",
                f"augment(x){where} gave different outputs for two generators in the same state")
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(device)
    with chk.step("augment-gradients", f"backward through augment(x){where}"):
        (out * weights).sum().backward()
    grad = x.grad
    chk.require(grad is not None and bool(torch.isfinite(grad).all()) and bool(grad.abs().sum() > 0),
                "augment-gradients", f"augment(x){where} passes no finite, non-zero gradient to x")
    scores = torch.rand(2 * BATCH, generator=torch.Generator().manual_seed(2)).to(device) + 0.1  # all "real"
    with chk.step("augment-state", f"observe(scores) and state_dict(){where}"):
        for _ in range(9):  # an adaptive p moves, and is between two adjustments when saved
            obj.observe(scores)
        state = obj.state_dict()
        scalars = obj.scalars()
    chk.require(isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values()),
                "augment-state", f"state_dict(){where} must map names to tensors, got {state!r:.80}")
    chk.require(isinstance(scalars, dict) and all(isinstance(v, torch.Tensor) and v.dim() == 0
                                                  and v.is_floating_point() for v in scalars.values()),
                "augment-state", f"scalars(){where} must map names to 0-dim float tensors, got {scalars!r:.80}")
    fresh = built()
    with chk.step("augment-state", f"load_state_dict(state_dict()) into a new instance{where}"):
        fresh.load_state_dict({k: v.detach().cpu().clone() for k, v in state.items()})  # as a checkpoint gives
        for augmentation in (obj, fresh):
            for _ in range(3):
                augmentation.observe(scores)
        theirs = fresh.augment(x.detach(), torch.Generator(device=device).manual_seed(7))
        scalars = obj.scalars()
    ours = obj.augment(x.detach(), torch.Generator(device=device).manual_seed(7))
    chk.require(torch.equal(ours, theirs), "augment-state",
                f"a new instance loaded with state_dict(){where} augments differently; some state that changes "
                "while training (an adaptive probability?) is not in state_dict()")
    fresh_scalars = fresh.scalars()
    chk.require(fresh_scalars.keys() == scalars.keys() and all(
        torch.equal(fresh_scalars[k].cpu(), scalars[k].cpu()) for k in scalars), "augment-state",
                f"a new instance loaded with state_dict(){where} logs different scalars")


@_quiet
def check_augmentation(
    augmentation: str | Callable[..., Any],
    options: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    registry: Registry | None = None,
    train: bool = True,
) -> None:
    """An augmentation on 3x8x8 images: setup, output, seeded draws from the generator given only, gradients, and a
    state that survives a checkpoint (after it has observed critic scores); then dcgan + bce trained with it, saved,
    reloaded and resumed bit for bit."""
    name, registry = _resolve("augmentation", augmentation, name, registry)
    chk = _Check("augmentation", name)
    info = tiny_info(IMAGE_SHAPE)

    def built() -> Any:
        obj = _create(chk, registry, "augmentation", name, options)
        with chk.step("setup", f"setup({info.source})"):
            obj.setup(info)
        return obj

    other = _create(chk, registry, "augmentation", name, options)
    try:
        other.setup(tiny_info(VECTOR_SHAPE))
    except ConfigError:
        pass
    except Exception as e:
        chk.fail("setup", f"setup on vectors raised {type(e).__name__}: {_first_line(e)}; refuse data with ConfigError")
    for device in _devices():
        _check_augmentation_on(chk, built, device)
    if train:
        config = _config("dcgan", "bce", "none", None)
        config.augment = Choice(name, dict(options or {}))
        _train_roundtrip(chk, registry, config, tiny_dataset(IMAGE_SHAPE))


def check_command(command: str, *, registry: Registry | None = None) -> None:
    """A plugin command must mount under `gantool` and answer `--help`."""
    from typer.testing import CliRunner

    from gantoolkit.cli.app import CORE_COMMANDS, build_app

    name, registry = _resolve("command", command, None, registry)
    chk = _Check("command", name)
    chk.require(name not in CORE_COMMANDS, "command", f"{name!r} is a core command; choose another name")
    with use_registry(registry):
        with chk.step("command", "building the gantool app"):
            app = build_app()
        result = CliRunner().invoke(app, [name, "--help"])
    chk.require(result.exit_code == 0, "command",
                lambda: f"`gantool {name} --help` exited {result.exit_code}: {result.output.strip()[-200:]}")
    record = registry.host.records.get(registry.get("command", name)[0].plugin)
    errors = [e for e in (record.errors if record else []) if repr(name) in e]
    chk.require(not errors, "command", "; ".join(errors))


# -- whole plugins and the whole registry --------------------------------------------------------------------


def _normal(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def registered_components(
    kind: str | None = None, registry: Registry | None = None, distribution: str | None = None
) -> list[tuple[str, str]]:
    """(kind, name) of every registered component the kit can check (for `pytest.mark.parametrize`)."""
    registry = registry or get_registry()
    kinds = [registry.kind(kind)] if kind else list(KINDS)
    out = []
    for k in kinds:
        for spec in registry.list(k):
            if distribution is None or _normal(spec.distribution or "") == _normal(distribution):
                out.append((k, spec.name))
    return out


def check_component(kind: str, name: str, *, registry: Registry | None = None, **kwargs: Any) -> None:
    """Run the kit's check for `kind` (from `gantoolkit.kinds.KINDS`) on a registered name; a name that takes an
    ARGUMENT and is given without one is checked with a working example argument."""
    registry = registry or get_registry()
    entry = KINDS[registry.kind(kind)]
    if entry.check is None:
        raise ComponentUnavailable(f"the kit has no rules for {entry.plural} yet")
    check: Callable[..., None] = globals()[entry.check]
    spec = registry.specs[entry.name].get(name.partition(":")[0])
    if spec is not None and spec.argument and ":" not in name:
        with _example_argument(spec) as argument:
            check(f"{name}:{argument}", registry=registry, **kwargs)
        return
    check(name, registry=registry, **kwargs)


@contextlib.contextmanager
def _example_argument(spec: ComponentSpec) -> Iterator[str]:
    """A usable ARGUMENT for a `name:ARGUMENT` dataset: its spec's `example=`, a folder of images for PATH, or
    the first of `a|b` choices."""
    if spec.extra.get("example"):
        yield str(spec.extra["example"])
    elif spec.argument and spec.argument.upper() == "PATH":
        with tempfile.TemporaryDirectory(prefix="gantool-conformance-images-") as tmp:
            yield str(_image_folder(Path(tmp)))
    elif spec.argument and "|" in spec.argument:
        yield spec.argument.split("|")[0]
    elif spec.argument and re.fullmatch(r"C[xX]H[xX]W", spec.argument):
        yield "3x8x8"
    else:
        raise ComponentUnavailable(
            f"dataset {spec.name!r} needs an argument ({spec.argument}); register it with example=... "
            "or call check_dataset(name, argument=...)")


def _image_folder(root: Path) -> Path:
    """Two class folders of small PNGs."""
    from PIL import Image

    rng = torch.Generator().manual_seed(0)
    for k, cls in enumerate(("cats", "dogs")):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            pixels = (torch.rand(10, 10, 3, generator=rng) * 120 + 100 * k).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return root


@dataclass
class Result:
    kind: str
    name: str
    status: str  # "passed", "skipped" or "failed"
    message: str = ""


def check_registered(kind: str | None = None, registry: Registry | None = None,
                     distribution: str | None = None) -> list[Result]:
    """Check every registered component (of `kind`, from `distribution`); raise one `ConformanceError` naming
    every failure, else return what passed and what was skipped (and why)."""
    results = []
    for k, name in registered_components(kind, registry, distribution):
        try:
            check_component(k, name, registry=registry)
            results.append(Result(k, name, "passed"))
        except ComponentUnavailable as e:
            results.append(Result(k, name, "skipped", str(e)))
        except ConformanceError as e:
            results.append(Result(k, name, "failed", str(e)))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise ConformanceError(f"{len(failed)} of {len(results)} components", "registered",
                               "failed:\n  " + "\n  ".join(r.message for r in failed))
    return results


def check_plugin(distribution: str, *, components: bool = True) -> Registry:
    """An installed plugin distribution: its entry point loads through `importlib.metadata` without errors, every
    component it registers records its distribution and version, and (with `components`) passes its checks.
    Returns the registry it loaded (built-ins plus every installed plugin)."""
    chk = _Check("plugin distribution", distribution)
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        chk.fail("plugin-installed", f"{distribution} is not installed (pip install it, e.g. pip install -e .)")
    eps = [ep for ep in dist.entry_points if ep.group == "gantoolkit"]
    chk.require(eps, "plugin-installed", "has no entry point in the 'gantoolkit' group (see [project.entry-points])")
    registry = plugin_registry(entry_points=True)
    records = [r for r in registry.host.records.values() if _normal(r.distribution or "") == _normal(distribution)]
    chk.require(records, "plugin-loads", "none of its entry points was loaded")
    for record in records:
        chk.require(not record.disabled, "plugin-loads",
                    f"plugin {record.name!r} is disabled by GANTOOL_DISABLE_PLUGINS")
        chk.require(not record.errors, "plugin-loads", f"plugin {record.name!r}: " + "; ".join(record.errors))
    for kind, name in registered_components(registry=registry, distribution=distribution):
        spec = registry.specs[kind][name]  # not get(): a dataset that takes an ARGUMENT needs one there
        chk.require(spec.version == dist.version, "provenance",
                    f"{kind} {name!r} records version {spec.version!r}, not {dist.version!r}")
    if components:
        check_registered(registry=registry, distribution=distribution)
    return registry
