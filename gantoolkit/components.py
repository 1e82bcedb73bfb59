"""The contracts of the component kinds. Plugins subclass these; the core only ever talks to these methods.

Shapes: a generator body maps B×`generator_input_dim` to B×`data shape`; a discriminator body maps
B×`discriminator_input_shape` to penultimate features B×F (`features`) and those to raw scores B (`head`),
never through a sigmoid: the loss decides what a score means.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from gantoolkit.controllers.directions import Directions
    from gantoolkit.data import DataInfo, DataRequest, Dataset
    from gantoolkit.evaluation import EvalContext
    from gantoolkit.sampling.generator import LoadedGenerator


@dataclass(frozen=True)
class ModelSpec:
    """What an architecture must build for."""

    data: DataInfo
    latent_dim: int
    generator_input_dim: int
    discriminator_input_shape: tuple[int, ...]
    critic_batchnorm: bool = True
    #: the conditioning's normalisation layers for the generator (e.g. conditional BatchNorm), or None. When set, the
    #: architecture (which declared `supports_conditional_norm`) makes every normalisation layer of its generator
    #: with `generator_norm(num_features)`, calls each as layer(x, labels), and its generator body is called as
    #: body(v, labels); `gantoolkit.layers` has the helpers (`generator_norm`, `LabelledSequential`)
    generator_norm: Callable[[int], nn.Module] | None = None


@runtime_checkable
class CriticBody(Protocol):
    """What `Architecture.build` returns as the discriminator body (an `nn.Module` with these three members)."""

    #: width F of the penultimate features
    feature_dim: int

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """B×input shape -> B×F penultimate features."""
        ...

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """B×F features -> B raw scores (never through a sigmoid)."""
        ...


class Architecture(ABC):
    """Builds a generator body and a discriminator body for a `ModelSpec`."""

    #: whether the generator can take the conditioning's normalisation layers (`ModelSpec.generator_norm`);
    #: a conditioning that brings them (`Conditioning.conditional_norm`) is refused with an architecture that cannot
    supports_conditional_norm: bool = False
    #: whether it builds images that are not square (`--image-size HxW`); images whose height and width differ are
    #: refused, before `check`, with an architecture that leaves this False
    supports_rectangular: bool = False

    def check(self, data: DataInfo) -> None:  # noqa: B027 - optional override
        """Raise `ConfigError` (with a fix) when this architecture cannot model `data`."""

    @abstractmethod
    def build(self, spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
        """Return (generator body, discriminator body); the discriminator body is a `CriticBody`."""


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer by name, with its learning rate and extra keyword arguments."""

    name: str = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] | None = (0.5, 0.999)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class PenaltyContext:
    """What a loss may use to compute a penalty on the critic."""

    critic: Callable[[torch.Tensor], torch.Tensor]
    real: torch.Tensor
    fake: torch.Tensor
    generator: torch.Generator
    critic_step: int
    #: the critic update's loss scaler under fp16 (`--amp` on GPUs without bf16), else None; `gradients` applies it
    scaler: torch.amp.GradScaler | None = None

    def gradients(
        self, output: torch.Tensor, inputs: torch.Tensor | Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, ...]:
        """d output / d inputs, differentiable (so the penalty trains the critic): `torch.autograd.grad` with
        `create_graph=True`, correct in every precision. Under fp16 the output is loss-scaled before and the gradients
        unscaled after (PyTorch's AMP recipe for gradient penalties), so gradients below fp16's smallest number do not
        vanish. The scale stays a device tensor (no host sync); an overflow gives an infinite penalty, whose update the
        scaler then skips like any other."""
        import torch

        if self.scaler is None:
            return torch.autograd.grad(output, inputs, create_graph=True)
        scaled = torch.autograd.grad(self.scaler.scale(output), inputs, create_graph=True)
        inverse = 1.0 / self.scaler.scale(torch.ones((), device=output.device))
        return tuple(g * inverse for g in scaled)


class Loss(ABC):
    """An adversarial objective and the optimisation recipe that goes with it."""

    #: critic steps per generator step recommended by this loss
    n_critic: int = 1
    #: whether the critic may use BatchNorm (a per-sample gradient penalty forbids it)
    critic_batchnorm: bool = True
    #: whether `generator_loss` also takes the critic's scores of a real batch (relativistic losses): the trainer then
    #: calls `generator_loss(fake_scores, real_scores)` at the cost of one more critic pass in the generator step; a
    #: loss that leaves it False is called with the fake scores alone and pays nothing
    needs_real_scores: bool = False
    #: the score halfway between what the critic is trained to give reals and fakes, so that a score's sign reads
    #: "real" or "fake" (logits: 0; LSGAN's 0-1 coding: 0.5); None where only differences of scores matter (the
    #: W-losses, relativistic ones), whose scores have no fixed origin. ADA's r_t = E[sign(D(real))] reads the
    #: sign of the real scores minus it
    score_midpoint: float | None = 0.0

    def optimizer(self) -> OptimizerSpec:
        """The recommended optimizer for both networks (users may override it)."""
        return OptimizerSpec()

    @abstractmethod
    def discriminator_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        """Scalar loss the critic minimises."""

    @abstractmethod
    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        """Scalar loss the generator minimises. With `needs_real_scores` it is called as
        `generator_loss(fake_scores, real_scores)`: the critic's (B,) scores of the last critic step's real batch,
        computed without gradients, the i-th real paired with the i-th fake."""

    def penalty(self, ctx: PenaltyContext) -> torch.Tensor | None:
        """An extra critic term that needs the critic itself (e.g. a gradient penalty); None for none."""
        return None

    def after_discriminator_step(self, critic: nn.Module) -> None:  # noqa: B027 - optional override
        """Called after every critic optimizer step (e.g. weight clipping)."""


class Conditioning:
    """How a class label enters the generator and the discriminator (every method has a default).

    A scheme may own trainable parts on both sides: `generator_module()` (trained with the generator's optimizer,
    saved with it and averaged by its EMA), `critic_module(feature_dim)` (trained with the critic's), and
    normalisation layers of the generator (`conditional_norm`, `norm_layer`), which live in the generator's body. It
    may add terms to both losses (`discriminator_term`, `generator_term`). A module it kept itself would be neither
    trained nor saved.
    """

    #: whether this scheme needs a labelled dataset
    requires_labels: bool = True
    #: whether this scheme brings the generator's normalisation layers (`norm_layer`); only architectures that
    #: declare `supports_conditional_norm` accept it
    conditional_norm: bool = False

    def __init__(self) -> None:
        self.num_classes = 0

    def setup(self, data: DataInfo) -> None:
        """Bind to the dataset (called once, before any model is built)."""
        self.num_classes = data.num_classes

    @property
    def generator_extra_dim(self) -> int:
        """Width of the vector concatenated to z."""
        return 0

    @property
    def discriminator_extra_channels(self) -> int:
        """Channels (images) or features (vectors) appended to the discriminator's input."""
        return 0

    def generator_module(self) -> nn.Module | None:
        """Parameters this scheme adds to the generator (e.g. a class embedding), or None. It is trained with the
        generator's optimizer, saved in checkpoints and averaged by the EMA, and handed to `generator_vector`."""
        return None

    def generator_vector(self, labels: torch.Tensor | None, module: nn.Module | None = None) -> torch.Tensor | None:
        """B×generator_extra_dim, or None. `module` is `generator_module()`'s module, passed only when there is one
        (so a scheme without one may take `labels` alone)."""
        return None

    def discriminator_input(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The discriminator's input for data `x` with `labels`."""
        return x

    def critic_module(self, feature_dim: int) -> nn.Module | None:
        """Parameters this scheme adds to the critic (trained with it), or None."""
        return None

    def score(
        self, head_scores: torch.Tensor, features: torch.Tensor, labels: torch.Tensor | None, module: nn.Module | None
    ) -> torch.Tensor:
        """The final critic score from the body's head score and features."""
        return head_scores

    def norm_layer(self, num_features: int) -> nn.Module:
        """With `conditional_norm`: a normalisation layer of the generator for `num_features` channels, called as
        layer(x, labels) on B×C or B×C×H×W and returning x's shape (e.g. `gantoolkit.layers.ConditionalBatchNorm`)."""
        from gantoolkit.errors import PluginError

        raise PluginError(f"conditioning {type(self).__name__} sets conditional_norm but does not define norm_layer",
                          "define norm_layer(num_features), e.g. returning gantoolkit.layers.ConditionalBatchNorm")

    def discriminator_term(self, ctx: ControllerContext) -> torch.Tensor | None:
        """A scalar added to the critic's loss in every critic step, or None; `ctx.module` is `critic_module`'s."""
        return None

    def generator_term(self, ctx: ControllerContext) -> torch.Tensor | None:
        """A scalar added to the generator's loss in every generator step, or None; the gradient reaches the
        generator through `ctx.fake` and `ctx.fake_features` (the critic is frozen)."""
        return None

    def sample_labels(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor | None:
        """Labels to generate with: uniform over the classes, or None when unconditional."""
        import torch

        if not self.requires_labels or self.num_classes == 0:
            return None
        return torch.randint(self.num_classes, (n,), generator=generator, device=device)


@dataclass
class ControllerContext:
    """What a loss term (`discriminator_term` / `generator_term` of a training controller or a conditioning) sees
    in one critic or generator step. The terms are added to that step's loss after the adversarial loss and before
    the loss's penalty, under the step's autocast.

    In a critic step `fake` is detached (only the critic learns) and `real`, `real_features`, `real_labels` are set.
    In the generator step `fake` carries the generator's graph, the critic is frozen, and the `real_*` fields are
    None: a generator term trains the generator through `fake` and `fake_features`.
    """

    #: the generated batch, B×data shape (model space: images in [-1, 1])
    fake: torch.Tensor
    #: the critic's penultimate features of `fake`, B×feature_dim
    fake_features: torch.Tensor
    #: every controller's codes joined (`TrainingController.own_codes` picks one's), or None
    codes: torch.Tensor | None
    #: the labels `fake` was generated with, or None when unconditional
    fake_labels: torch.Tensor | None
    #: the component's own critic module (`critic_module`), or None
    module: nn.Module | None
    real: torch.Tensor | None = None
    real_features: torch.Tensor | None = None
    real_labels: torch.Tensor | None = None
    #: the critic's raw scores of `fake` and `real` under their labels (B each), as the adversarial loss got them;
    #: `real_scores` is None in the generator step
    fake_scores: torch.Tensor | None = None
    real_scores: torch.Tensor | None = None
    #: this step's critic as critic(x, labels) -> B raw scores (frozen in the generator step, so gradients reach
    #: only x), for a term that scores a batch under other labels; each call is one more critic pass. None outside
    #: training
    critic: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None
    #: the run's random generator on the device: a term's random draws come from it so a run resumes bit for bit
    generator: torch.Generator | None = None


class TrainingController:
    """A regularizer applied while training: L_new = L_original + reg (e.g. InfoGAN).

    It may add codes to the generator's input and its own module to the critic (trained with the critic's
    optimizer and saved with it).
    """

    #: where this controller's codes start in the joined codes of all controllers (set by `build_models`)
    code_offset: int = 0

    def own_codes(self, codes: torch.Tensor | None) -> torch.Tensor | None:
        """This controller's columns of `ControllerContext.codes` (which joins every controller's codes)."""
        if codes is None or not self.code_dim:
            return None
        return codes[:, self.code_offset : self.code_offset + self.code_dim]

    def setup(self, data: DataInfo, latent_dim: int) -> None:
        """Bind to the dataset and latent size before models are built."""

    @property
    def code_dim(self) -> int:
        """Width of the codes concatenated to the generator's input."""
        return 0

    def sample_codes(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor | None:
        return None

    def critic_module(self, feature_dim: int) -> nn.Module | None:
        return None

    def discriminator_term(self, ctx: ControllerContext) -> torch.Tensor | None:
        return None

    def generator_term(self, ctx: ControllerContext) -> torch.Tensor | None:
        return None


class Augmentation(ABC):
    """Differentiable augmentation of what the critic sees (`--augment NAME`, DiffAugment, ADA).

    The trainer calls `augment(x, generator)` on every batch right before the critic scores it: the reals and the
    fakes of each critic step and the fakes of the generator step, each with its own draws from `generator` (the
    run's RNG, so runs are reproducible and resume bit for bit). It must be differentiable in `x` (the generator
    learns through it) and keep x's shape, dtype and device. Penalties see the augmented batches. Nothing is
    augmented when sampling or evaluating.
    """

    #: whether it adapts from the sign of the critic's real scores (ADA's r_t), which only a loss with a
    #: `score_midpoint` gives a meaning; the run's banner says so when the loss has none
    reads_score_sign: bool = False
    #: what that banner line suggests instead (ADA names its fixed-probability options)
    score_sign_fix: str = "use an augmentation that does not adapt from the critic's scores"

    def setup(self, data: DataInfo) -> None:
        """Bind to the data before training; raise `ConfigError` (with a fix) for data it cannot augment (the
        default refuses anything but images)."""
        from gantoolkit.errors import ConfigError

        if not data.is_image:
            raise ConfigError(f"--augment works on images only, and {data.source!r} is vectors",
                              "leave --augment out (or --augment none)")

    @abstractmethod
    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A transformed copy of the batch `x` (B x C x H x W in model space), drawing only from `generator`."""

    def observe(  # noqa: B027 - optional override
        self, real_scores: torch.Tensor, total: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        """The critic's scores (B,) on the augmented reals of each critic step, detached, minus the loss's
        `score_midpoint` (so a positive score reads "real"; raw where the loss has none); ADA adapts from them.
        `total` sums a tensor over the run's processes (None: one process). Stay on the device: no host sync."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors that change while training (ADA's p), saved in every checkpoint as `augment.KEY`."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:  # noqa: B027 - optional override
        """Restore `state_dict()` from a checkpoint (an empty dict: a checkpoint written before there was any)."""

    def scalars(self) -> dict[str, torch.Tensor]:
        """0-dim device tensors logged with the losses every step (averaged over `--log-every`), e.g. `ada_p`."""
        return {}


@dataclass
class SamplerContext:
    """What a sampler is set up with: the loaded generator and what the command asked for."""

    model: LoadedGenerator
    #: the command's `--seed`, for what the sampler draws while it is set up (the samples get their own seed)
    seed: int = 0
    #: `--class` (an index), or None for all classes evenly
    class_index: int | None = None
    #: `--truncation`, or None
    truncation: float | None = None
    #: the command's `--data`, or None for the data the model was trained on (refused when its checkpoint names a
    #: path: a path is read only when the command line gives it)
    data: str | None = None

    def training_data(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The model's training data (or the command's `--data`) in model space (images in [-1, 1], or vectors) and
        its labels, loaded now."""
        from gantoolkit.data import to_model_space
        from gantoolkit.evaluation import load_matching_data

        dataset = load_matching_data(self.model, self.data)
        return to_model_space(dataset.data, dataset.info), dataset.labels


class Sampler(ABC):
    """How `gantool sample` and `gantool evaluate` draw from a trained generator (`--sampler NAME`)."""

    @abstractmethod
    def setup(self, ctx: SamplerContext) -> None:
        """Bind to a loaded generator, once, loading or training what the sampler needs; raise `ConfigError` (with
        a fix) for a request it cannot serve (e.g. a `--class` it ignores)."""

    @abstractmethod
    def sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n model-space samples on the CPU, as `LoadedGenerator.sample` gives them, and their labels (None when
        unconditional); the same seed gives the same samples."""

    def describe(self) -> str:
        """How the samples were drawn, for `gantool evaluate`'s report (and the sampler's own statistics)."""
        return type(self).__name__

    def __call__(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.sample(n, seed)


class DirectionFinder(ABC):
    """Named directions for a trained generator (`gantool directions --method NAME`, the demo's controls).

    `find(model)` returns `gantoolkit.controllers.directions.Directions`: K unit vectors in the generator's z-space
    (`space="z"`, K x latent size, moved by adding alpha * d) or in its controllers' codes (`space="codes"`, K x code
    size), one distinct name per row, most important first, and `source=generator_identity(model)`.
    """

    @abstractmethod
    def find(self, model: LoadedGenerator) -> Directions:
        """Directions for `model`; raise `ConfigError` (with a fix) for a generator this method cannot read."""


class DataSource(ABC):
    """Base class of registered datasets: `load(request)` returns a `Dataset`."""

    #: whether the ARGUMENT of `--data NAME:ARGUMENT` may name a file or folder (`folder:PATH`). A path is read only
    #: when the command line gives it: a checkpoint's saved data is then not loaded on its own (`--resume` and
    #: `evaluate` ask for `--data`). A source whose argument only picks one of its own sets (`toy:ring`) sets False.
    argument_is_path: bool = True

    @abstractmethod
    def load(self, request: DataRequest) -> Dataset:
        """Read (or make) the whole dataset; raise `DataError` with a fix when that is not possible."""

    def recommend(self, config: Any) -> dict[str, Any]:
        """Settings that suit this data for the parts `config` (a RunConfig) chooses, as a config layer: RunConfig
        fields, and component tables (`{"name": "dcgan", "ngf": 32}`) that apply only to the component they name.
        They sit below presets and flags, so the user's settings always win. None by default."""
        return {}


class Metric(ABC):
    """A number (or a few) computed from generated samples and the real data."""

    #: the names `compute` returns, in order (for tables and docs)
    keys: tuple[str, ...] = ()
    #: (name, suffix) of each artefact `compute` may write through `ctx.artefact`, checked before any work
    artefacts: tuple[tuple[str, str], ...] = ()

    def why_not(self, ctx: EvalContext) -> str | None:
        """None when this metric applies to `ctx`; otherwise why not, and what would make it apply."""
        return None

    @abstractmethod
    def compute(self, ctx: EvalContext) -> dict[str, float | int | None]:
        """The metric's values (None for undefined); may write artefacts through `ctx.artefact`."""
