"""Composition: registry components -> a generator G(z, y, codes) and a critic D(x, y) ready to train or sample.

The generator's input is [z | conditioning vector | controller codes]; the critic's input is the data with the
conditioning's extra channels. Both wrappers hold the architecture's bodies, so their state dicts are the bodies'
plus whatever parameters conditioning and controllers add (`cond_module` on either side, `controllers` on the
critic). A conditioning's normalisation layers live in the generator's body, which is then called as body(v, labels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gantoolkit.components import Architecture, Augmentation, Conditioning, Loss, ModelSpec, TrainingController
from gantoolkit.config import RunConfig
from gantoolkit.data import DataInfo
from gantoolkit.errors import ConfigError
from gantoolkit.layers import TAKES_LABELS
from gantoolkit.registry import Registry


class Generator(nn.Module):
    """G(z, labels, codes) -> data-space samples (images in [-1, 1], or vectors)."""

    def __init__(self, body: nn.Module, conditioning: Conditioning, latent_dim: int, code_dim: int,
                 cond_module: nn.Module | None = None, labelled_body: bool = False) -> None:
        super().__init__()
        self.body = body
        self.conditioning = conditioning
        self.latent_dim = latent_dim
        self.code_dim = code_dim
        self.cond_module = cond_module  # the conditioning's generator_module(), trained and saved with G
        self.labelled_body = labelled_body  # the body holds the conditioning's normalisation layers

    def input_vector(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, codes: torch.Tensor | None = None
    ) -> torch.Tensor:
        parts = [z]
        cond = self.conditioning_vector(labels) if self.conditioning.generator_extra_dim else None
        if cond is not None:
            parts.append(cond.to(z.dtype))
        if codes is not None:
            parts.append(codes.to(z.dtype))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def conditioning_vector(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        if self.cond_module is None:  # the one-argument form that schemes without a generator module may define
            return self.conditioning.generator_vector(labels)
        return self.conditioning.generator_vector(labels, self.cond_module)

    def forward(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, codes: torch.Tensor | None = None
    ) -> torch.Tensor:
        v = self.input_vector(z, labels, codes)
        return self.body(v, labels) if self.labelled_body else self.body(v)


class Critic(nn.Module):
    """D(x, labels) -> raw scores (B,), with the penultimate features on request."""

    def __init__(
        self, body: nn.Module, conditioning: Conditioning, cond_module: nn.Module | None, controllers: nn.ModuleDict
    ) -> None:
        super().__init__()
        self.body: Any = body  # an architecture's discriminator body: features(), head(), feature_dim
        self.conditioning = conditioning
        self.cond_module = cond_module
        self.controllers = controllers

    def score_and_features(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body.features(self.conditioning.discriminator_input(x, labels))
        return self.conditioning.score(self.body.head(h), h, labels, self.cond_module), h

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.score_and_features(x, labels)[0]


@dataclass
class GanModels:
    """Everything built from a configuration, before any optimizer exists."""

    config: RunConfig
    data: DataInfo
    generator: Generator
    critic: Critic
    loss: Loss
    conditioning: Conditioning
    controllers: dict[str, TrainingController]
    provenance: dict[str, Any] = field(default_factory=dict)
    #: what the critic's inputs go through while training (None when built for sampling)
    augment: Augmentation | None = None

    def sample_inputs(
        self, n: int, generator: torch.Generator, device: torch.device, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Latents, labels (given or drawn uniformly) and controller codes for n samples."""
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=device)
        if labels is None:
            labels = self.conditioning.sample_labels(n, generator, device)
        codes = self.sample_codes(n, generator, device)
        return z, labels, codes

    def sample_codes(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor | None:
        drawn = [c.sample_codes(n, generator, device) for c in self.controllers.values() if c.code_dim]
        parts = [p for p in drawn if p is not None]
        return torch.cat(parts, dim=1) if parts else None


def discriminator_input_shape(data: DataInfo, extra: int) -> tuple[int, ...]:
    return (data.shape[0] + extra, *data.shape[1:])


def build_models(config: RunConfig, data: DataInfo, registry: Registry, augment: bool = True) -> GanModels:
    """Create every component named in `config` and compose the networks for `data` (and, with `augment`, the
    augmentation the critic's inputs go through while training: sampling needs none)."""
    provenance: dict[str, Any] = {}

    def create(kind: str, key: str, choice: Any) -> Any:
        spec, _ = registry.get(kind, choice.name)
        provenance[key] = spec.provenance()
        choice.options = spec.resolve(choice.options)  # the saved config records every option's value
        return spec.create(choice.options)

    arch: Architecture = create("architecture", "arch", config.arch)
    loss: Loss = create("loss", "loss", config.loss)
    cond: Conditioning = create("conditioning", "cond", config.cond)
    _expect(arch, Architecture, "architecture", config.arch.name)
    _expect(loss, Loss, "loss", config.loss.name)
    _expect(cond, Conditioning, "conditioning", config.cond.name)
    if cond.requires_labels and not data.labelled:
        raise ConfigError(
            f"conditioning {config.cond.name!r} needs labelled data, but {data.source!r} has no labels",
            "use --cond none, or a dataset with classes (for a folder: one subfolder per class)",
        )
    cond.setup(data)
    controllers: dict[str, TrainingController] = {}
    for choice in config.controllers:
        if choice.name in controllers:
            raise ConfigError(f"controller {choice.name!r} is given twice")
        controller = create("controller", f"controller:{choice.name}", choice)
        _expect(controller, TrainingController, "controller", choice.name)
        controller.setup(data, config.latent_dim)
        controllers[choice.name] = controller
    augmentation: Augmentation | None = None
    if augment:
        augmentation = create("augmentation", "augment", config.augment)
        _expect(augmentation, Augmentation, "augmentation", config.augment.name)
        augmentation.setup(data)
    _check_rectangular(arch, config.arch.name, data, registry)
    arch.check(data)
    code_dim = 0
    for controller in controllers.values():  # codes are joined in this order (GanModels.sample_codes)
        controller.code_offset = code_dim
        code_dim += controller.code_dim
    norms: list[nn.Module] = []  # the conditioning's normalisation layers the architecture made
    if cond.conditional_norm and not getattr(arch, "supports_conditional_norm", False):
        able = _archs_declaring("supports_conditional_norm", registry)
        raise ConfigError(
            f"conditioning {config.cond.name!r} replaces the generator's normalisation layers, "
            f"which architecture {config.arch.name!r} does not support",
            (f"use --arch {' or '.join(able)}" if able else "use an architecture that supports them") + ", or "
            "another --cond",
        )
    spec = ModelSpec(
        data=data,
        latent_dim=config.latent_dim,
        generator_input_dim=config.latent_dim + cond.generator_extra_dim + code_dim,
        discriminator_input_shape=discriminator_input_shape(data, cond.discriminator_extra_channels),
        critic_batchnorm=loss.critic_batchnorm,
        generator_norm=_norm_factory(cond, config.cond.name, norms) if cond.conditional_norm else None,
    )
    g_body, d_body = arch.build(spec)
    if cond.conditional_norm and not norms:
        raise ConfigError(
            f"architecture {config.arch.name!r} supports conditional normalisation but built no such layer "
            f"for conditioning {config.cond.name!r}",
            "its plugin breaks the contract (see gantoolkit.layers); use another --cond",
        )
    feature_dim = int(getattr(d_body, "feature_dim", 0))
    controller_modules = nn.ModuleDict()
    for name, controller in controllers.items():
        module = controller.critic_module(feature_dim)
        if module is not None:
            controller_modules[name] = module
    critic = Critic(d_body, cond, cond.critic_module(feature_dim), controller_modules)
    generator = Generator(g_body, cond, config.latent_dim, code_dim, cond.generator_module(), bool(norms))
    return GanModels(config, data, generator, critic, loss, cond, controllers, provenance, augmentation)


def _check_rectangular(arch: Architecture, name: str, data: DataInfo, registry: Registry) -> None:
    """ConfigError when the images are not square and the architecture does not declare `supports_rectangular`."""
    if not data.is_image or len(data.shape) != 3 or data.shape[1] == data.shape[2]:
        return
    if getattr(arch, "supports_rectangular", False) is True:
        return
    h, w = data.shape[1:]
    able = _archs_declaring("supports_rectangular", registry)
    raise ConfigError(f"architecture {name!r} makes square images only, not {h}x{w}",
                      f"pass one side, e.g. --image-size {max(h, w)}"
                      + (f", or use --arch {' or '.join(able)}" if able else ""))


def _archs_declaring(flag: str, registry: Registry) -> list[str]:
    """The registered architectures whose class declares `flag` True (for a refusal's hint)."""
    names = []
    for name in registry.names("architecture"):
        try:
            factory = registry.get("architecture", name)[0].load()
        except Exception:  # a plugin that cannot load is not a suggestion
            continue
        if getattr(factory, flag, False) is True:
            names.append(name)
    return names


def _norm_factory(cond: Conditioning, name: str, made: list[nn.Module]) -> Callable[[int], nn.Module]:
    """`ModelSpec.generator_norm`: the conditioning's layers, marked as taking labels and remembered in `made`."""

    def make(num_features: int) -> nn.Module:
        layer = cond.norm_layer(num_features)
        if not isinstance(layer, nn.Module):
            raise ConfigError(f"conditioning {name!r} made a {type(layer).__name__} as a normalisation layer, "
                              "not a torch.nn.Module", "its plugin breaks the contract; see the plugin guide")
        setattr(layer, TAKES_LABELS, True)
        made.append(layer)
        return layer

    return make


def _expect(obj: Any, cls: type, kind: str, name: str) -> None:
    if not isinstance(obj, cls):
        raise ConfigError(
            f"{kind} {name!r} built a {type(obj).__name__}, not a gantoolkit {cls.__name__}",
            "its plugin breaks the contract; see the plugin guide",
        )
