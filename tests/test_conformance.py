"""The conformance kit: every registered component passes it, and each broken component fails with its rule named."""

from __future__ import annotations

import random
import types

import pytest
import torch
from torch import nn

import gantoolkit
from gantoolkit.builtin.archs.mlp import MLP
from gantoolkit.builtin.conditionings.onehot import OneHot
from gantoolkit.builtin.losses.bce import BCE
from gantoolkit.builtin.losses.wasserstein import WGAN
from gantoolkit.components import Conditioning, DirectionFinder, Loss, OptimizerSpec, Sampler, TrainingController
from gantoolkit.controllers.directions import Directions, generator_identity, unit_rows
from gantoolkit.data import Dataset, DataSource
from gantoolkit.errors import ConfigError
from gantoolkit.registry import Registry
from gantoolkit.testing import (
    RULES,
    ComponentUnavailable,
    ConformanceError,
    check_architecture,
    check_component,
    check_conditioning,
    check_config,
    check_controller,
    check_dataset,
    check_direction_finder,
    check_loss,
    check_metric,
    check_plugin,
    check_registered,
    check_sampler,
    plugin_registry,
    registered_components,
    tiny_dataset,
    tiny_info,
)

VECTORS = [(2,)]
IMAGES = [(3, 8, 8)]


@pytest.mark.parametrize("kind, name", registered_components(registry=Registry.load()))
def test_every_registered_component_conforms(kind, name):
    """The CI run of the kit over the built-ins (and whatever else the suite's registry holds)."""
    check_component(kind, name)


def test_check_registered_reports_passed_and_skipped():
    results = check_registered("conds")
    assert {(r.name, r.status) for r in results} == {(n, "passed") for n in ("none", "onehot", "embed", "cbn", "acgan")}
    results = {r.name: r for r in check_registered("datasets")}
    assert results["mnist"].status == "skipped" and "--download" in results["mnist"].message
    assert results["toy"].status == "passed"


def fails(rule: str, check, *args, **kwargs) -> ConformanceError:
    with pytest.raises(ConformanceError) as err:
        check(*args, **kwargs)
    assert err.value.rule == rule, str(err.value)
    assert isinstance(err.value, AssertionError) and f"[rule: {rule}]" in str(err.value)
    return err.value


# -- architectures ----------------------------------------------------------------------------------------------


class Wrap(nn.Module):
    """A body whose forward is `fn(inner, x)`; features/head/feature_dim pass through to the inner body."""

    def __init__(self, inner: nn.Module, fn) -> None:
        super().__init__()
        self.inner, self.fn = inner, fn
        if hasattr(inner, "feature_dim"):
            self.feature_dim = inner.feature_dim

    def forward(self, x):
        return self.fn(self.inner, x)

    def features(self, x):
        return self.fn(self.inner, x)

    def head(self, h):
        return self.inner.head(h)


def arch(edit):
    """An MLP architecture whose built bodies are passed through `edit(g, d, spec) -> (g, d)`."""

    class Edited(MLP):
        def __init__(self) -> None:
            super().__init__(hidden_dim=8, g_depth=1, d_depth=1)

        def build(self, spec):
            return edit(*super().build(spec), spec)

    return Edited


def keep_dim_head(g, d, spec):
    d.head = lambda h: d.final(h)
    return g, d


def test_head_with_a_trailing_dimension_fails():
    error = fails("head-shape", check_architecture, arch(keep_dim_head), name="x", shapes=VECTORS, train=False)
    assert str(error).startswith("architecture 'x': discriminator.head")
    assert "must return shape (B,), got (B, 1)" in str(error)


def test_missing_feature_dim_fails():
    def no_feature_dim(g, d, spec):
        del d.feature_dim
        return g, d

    fails("discriminator-interface", check_architecture, arch(no_feature_dim), shapes=VECTORS, train=False)


def test_images_outside_minus_one_one_fail():
    error = fails("generator-range", check_architecture, arch(lambda g, d, s: (Wrap(g, lambda m, v: 3 * m(v)), d)),
                  shapes=IMAGES, train=False)
    assert "tanh" in str(error)


def test_batchnorm_in_a_critic_that_must_not_have_it_fails():
    def add_batchnorm(g, d, spec):
        d.main.append(nn.BatchNorm1d(d.feature_dim))
        return g, d

    fails("critic-batchnorm", check_architecture, arch(add_batchnorm), shapes=VECTORS, train=False)


def test_unused_parameter_fails():
    def unused(g, d, spec):
        g.spare = nn.Linear(2, 2)
        return g, d

    error = fails("gradients", check_architecture, arch(unused), shapes=VECTORS, train=False)
    assert "'spare.weight'" in str(error)


def test_detached_generator_fails():
    fails("gradients", check_architecture, arch(lambda g, d, s: (Wrap(g, lambda m, v: m(v).detach()), d)),
          shapes=VECTORS, train=False)


def test_batch_statistics_at_eval_time_fail():
    centred = arch(lambda g, d, s: (Wrap(g, lambda m, v: m(v) - m(v).mean(0, keepdim=True)), d))
    fails("eval-batch-independent", check_architecture, centred, shapes=VECTORS, train=False)


def test_nondeterministic_build_fails():
    def jitter(g, d, spec):
        noise = torch.Generator().manual_seed(random.randrange(1 << 30))
        with torch.no_grad():
            for p in g.parameters():
                p.add_(torch.randn(p.shape, generator=noise))
        return g, d

    fails("deterministic-build", check_architecture, arch(jitter), shapes=VECTORS, train=False)


def test_state_outside_the_state_dict_breaks_resume():
    class Counting(Wrap):
        def features(self, x):
            self.calls = getattr(self, "calls", 0) + 1  # a plain attribute: never saved in a checkpoint
            return self.inner.features(x) * (1 + 0.1 * self.calls)

    error = fails("resume-exact", check_architecture, arch(lambda g, d, s: (g, Counting(d, None))), shapes=VECTORS)
    assert "resuming" in str(error)


def test_architecture_that_supports_nothing_checked_fails():
    from gantoolkit.builtin.archs.dcgan import DCGAN

    fails("supports-data", check_architecture, DCGAN, shapes=VECTORS)


# -- losses -----------------------------------------------------------------------------------------------------


class ProbabilityBCE(Loss):
    """The course's BCE table, computed from probabilities: log(0) at confident scores."""

    def discriminator_loss(self, real_scores, fake_scores):
        return -(torch.log(torch.sigmoid(real_scores)) + torch.log(1 - torch.sigmoid(fake_scores))).mean()

    def generator_loss(self, fake_scores):
        return -torch.log(torch.sigmoid(fake_scores)).mean()


class ReversedGenerator(WGAN):
    def generator_loss(self, fake_scores):
        return fake_scores.mean()


class PerSample(BCE):
    def discriminator_loss(self, real_scores, fake_scores):
        return torch.relu(1 - real_scores) + torch.relu(1 + fake_scores)


class UnknownOptimizer(BCE):
    def optimizer(self):
        return OptimizerSpec("adamax", 1e-3)


class NaNPenalty(BCE):
    def penalty(self, ctx):
        return ctx.critic(ctx.real).mean() * float("nan")


class TextMidpoint(BCE):
    score_midpoint = "0"  # type: ignore[assignment]


class UnscaledR1(BCE):
    """R1 as the guide showed it before ctx.gradients: its gradients vanish under fp16 (no loss scale)."""

    critic_batchnorm = False

    def penalty(self, ctx):
        real = ctx.real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(ctx.critic(real).sum(), real, create_graph=True)
        return grad.flatten(1).pow(2).sum(1).mean()


class UnscaledGP(WGAN):
    def penalty(self, ctx):
        mixed = (0.5 * ctx.real + 0.5 * ctx.fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(ctx.critic(mixed).sum(), mixed, create_graph=True)
        return 10 * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


@pytest.mark.parametrize(
    "loss, rule, words",
    [
        (UnscaledR1, "penalty-loss-scale", "is 0 under fp16 with a loss scaler but 9 in fp32"),
        (UnscaledGP, "penalty-loss-scale", "ctx.gradients(output, inputs)"),
        (ProbabilityBCE, "finite-losses", "scores of -+30"),
        (ReversedGenerator, "score-direction", "generator must want high scores"),
        (PerSample, "loss-scalar", "0-dim float tensor, got (8,)"),
        (UnknownOptimizer, "optimizer", "'adamax'"),
        (NaNPenalty, "finite-losses", "penalty()"),
        (TextMidpoint, "score-midpoint", "a finite number or None, got '0'"),
    ],
)
def test_broken_losses_fail_with_their_rule(loss, rule, words):
    assert words in str(fails(rule, check_loss, loss, train=False))


@pytest.mark.parametrize("loss, options", [("wgan-gp", {}), ("wgan-gp", {"lazy_every": 2}), ("bce", {"r1": 1.0})])
def test_the_built_in_penalties_keep_their_value_under_fp16_loss_scaling(loss, options):
    check_loss(loss, options, train=False)  # penalty-loss-scale among the rest


# -- conditionings ----------------------------------------------------------------------------------------------


class IgnoresLabels(Conditioning):
    """Says it needs labels, then never uses them."""


class MiscountedChannels(OneHot):
    @property
    def discriminator_extra_channels(self) -> int:
        return self.num_classes + 1


def test_conditioning_that_ignores_labels_fails():
    fails("labels-used", check_conditioning, IgnoresLabels, train=False)


def test_conditioning_with_miscounted_channels_fails():
    error = fails("discriminator-input", check_conditioning, MiscountedChannels, train=False)
    assert "(4, 7, 8, 8)" in str(error)


def test_labels_sampled_off_by_one_fail():
    class OffByOne(OneHot):
        def sample_labels(self, n, generator, device):
            return torch.randint(1, self.num_classes + 1, (n,), generator=generator, device=device)

    error = fails("sample-labels", check_conditioning, OffByOne, train=False)
    assert "outside 0..2" in str(error)


# -- controllers ----------------------------------------------------------------------------------------------


class WrongCodes(TrainingController):
    @property
    def code_dim(self) -> int:
        return 2

    def sample_codes(self, n, generator, device):
        return torch.rand(n, 3, generator=generator, device=device)


class CodeRegression(TrainingController):
    """InfoGAN with continuous codes: a Q head regresses the codes from the critic's features."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    @property
    def code_dim(self) -> int:
        return 2

    def sample_codes(self, n, generator, device):
        return torch.rand(n, 2, generator=generator, device=device) * 2 - 1

    def critic_module(self, feature_dim):
        return nn.Linear(feature_dim, 2)

    def discriminator_term(self, ctx):
        return self.weight * ((ctx.module(ctx.fake_features) - ctx.codes) ** 2).mean()

    generator_term = discriminator_term


def test_controller_with_misshapen_codes_fails():
    fails("codes", check_controller, WrongCodes, train=False)


def test_a_working_training_controller_passes():
    check_controller(CodeRegression, {"weight": "0.5"})


def test_a_direction_finder_is_not_a_training_controller():
    class Editor(DirectionFinder):
        def find(self, model):
            raise NotImplementedError

    assert "not a gantoolkit TrainingController" in str(fails("factory-type", check_controller, Editor))


# -- direction finders ------------------------------------------------------------------------------------------


class AxisFinder(DirectionFinder):
    """The first two axes of z: a working finder to break."""

    def vectors(self, model):
        return torch.eye(model.latent_dim)[:2]

    def find(self, model):
        return Directions(self.vectors(model), ["axis0", "axis1"], "axes", generator_identity(model))


class NotDirections(AxisFinder):
    def find(self, model):
        return [self.vectors(model)]


class TooNarrow(AxisFinder):
    def vectors(self, model):
        return torch.eye(3)[:2]


class NotUnit(AxisFinder):
    def vectors(self, model):
        return 2 * super().vectors(model)


class Anonymous(AxisFinder):
    def find(self, model):
        return Directions(self.vectors(model), ["axis0", "axis1"], "axes", {})


class Misnamed(AxisFinder):
    def find(self, model):
        return Directions(self.vectors(model), ["axis0"], "axes", generator_identity(model))


class Random(AxisFinder):
    def vectors(self, model):
        return unit_rows(torch.randn(2, model.latent_dim))


@pytest.mark.parametrize("finder, rule, words", [
    (NotDirections, "finder-directions", "returned a list, not Directions"),
    (TooNarrow, "finder-directions", "are 3-dimensional, but this generator's latent size is 8"),
    (NotUnit, "finder-directions", "norm 2 to 2, not unit vectors"),
    (Anonymous, "finder-directions", "set source=generator_identity(model)"),
    (Misnamed, "finder-directions", "one name per row"),
    (Random, "finder-deterministic", "gave different directions the second time"),
])
def test_broken_direction_finders_fail_with_what_is_wrong(finder, rule, words):
    assert words in str(fails(rule, check_direction_finder, finder))


def test_a_working_direction_finder_passes_and_one_that_needs_options_is_unavailable():
    check_direction_finder(AxisFinder)
    with pytest.raises(ComponentUnavailable, match="needs a classifier"):
        check_direction_finder("classifier")


# -- datasets ---------------------------------------------------------------------------------------------------


class FloatImages(DataSource):
    def load(self, request):
        data = tiny_dataset((1, 8, 8), n=16)
        return Dataset(data.info, data.data.float(), data.labels)


class LabelsOutOfRange(DataSource):
    def load(self, request):
        data = tiny_dataset((2,), n=16)
        return Dataset(data.info, data.data, data.labels + 1)


class Unrepeatable(DataSource):
    def load(self, request):
        return Dataset(tiny_info((2,), 0), torch.randn(16, 2))


class IgnoresImageSize(DataSource):
    def load(self, request):
        return tiny_dataset((1, 16, 16), n=16)


@pytest.mark.parametrize(
    "source, rule",
    [(FloatImages, "dataset-tensors"), (LabelsOutOfRange, "labels"), (Unrepeatable, "deterministic-load"),
     (IgnoresImageSize, "image-size")],
)
def test_broken_datasets_fail_with_their_rule(source, rule):
    fails(rule, check_dataset, source, train=False)


def test_dataset_with_an_argument():
    class Blobs(DataSource):
        def load(self, request):
            return tiny_dataset((int(request.argument),), n=32)

    check_dataset(Blobs, argument="3")


# -- configs, plugins, the kit's own contract ------------------------------------------------------------------


# -- samplers -------------------------------------------------------------------------------------------------


class Drawing(Sampler):
    def setup(self, ctx):
        self.ctx = ctx

    def sample(self, n, seed):
        return self.ctx.model.sample(n, seed, self.ctx.class_index)


class IgnoresTheClass(Drawing):
    def sample(self, n, seed):
        return self.ctx.model.sample(n, seed)


class IgnoresTheSeed(Drawing):
    def sample(self, n, seed):
        return self.ctx.model.sample(n, int(torch.randint(1000, ())), self.ctx.class_index)


class Flattens(Drawing):
    def sample(self, n, seed):
        x, y = super().sample(n, seed)
        return x.flatten(1), y


class RefusesEverything(Drawing):
    def setup(self, ctx):
        raise ConfigError("no")


@pytest.mark.parametrize("sampler, rule, words", [
    (IgnoresTheClass, "sampler-class", "not only 3"),
    (IgnoresTheSeed, "sampler-deterministic", "drew different samples for seed 1"),
    (Flattens, "sampler-samples", "expected float32 (5, 1, 8, 8)"),
    (RefusesEverything, "sampler-setup", "raised ConfigError: no"),
])
def test_broken_samplers_fail_with_their_rule(sampler, rule, words):
    assert words in str(fails(rule, check_sampler, sampler))


@pytest.mark.parametrize("name, options", [("drs", {"critic_steps": 2}), ("refine", {"critic_steps": 2})])
def test_samplers_that_train_the_critic_on_read_the_training_data_in_model_space(name, options):
    check_sampler(name, options)  # on 8x8 digits too: uint8 images would not go through the critic
    check_sampler(Drawing)


def test_preset_naming_an_unknown_component_fails():
    @gantoolkit.hookimpl
    def register_configs(register):
        register("bad-preset", {"arch": "dcgan", "loss": "hinge-typo"})

    registry = plugin_registry(types.SimpleNamespace(__name__="presets", register_configs=register_configs))
    error = fails("config-components", check_config, "bad-preset", registry=registry)
    assert "hinge-typo" in str(error)


def test_a_plugin_that_fails_to_load_is_reported():
    @gantoolkit.hookimpl
    def register_losses(register):
        register("bce", BCE)  # clashes with the built-in

    with pytest.raises(ConformanceError, match="loss name 'bce' is built in") as err:
        plugin_registry(types.SimpleNamespace(__name__="copycat", register_losses=register_losses))
    assert err.value.rule == "plugin-loads"


def test_check_plugin_checks_a_dataset_that_takes_an_argument(tmp_path, monkeypatch):
    from tests.test_plugin_isolation import make_dist

    make_dist(tmp_path, "gantool-blobs", {"conformance_blobs": """
        import gantoolkit
        from gantoolkit.testing import tiny_dataset
        from gantoolkit.data import DataSource

        class Blobs(DataSource):
            def load(self, request):
                return tiny_dataset((int(request.argument),), n=32)

        @gantoolkit.hookimpl
        def register_datasets(register):
            register("blobs", Blobs, argument="DIM", example="3")
        """}, {"blobs": "conformance_blobs"})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = check_plugin("gantool-blobs", components=False)
    (result,) = check_registered(registry=registry, distribution="gantool-blobs")
    assert (result.name, result.status) == ("blobs", "passed")


def test_check_plugin_needs_an_installed_distribution():
    fails("plugin-installed", check_plugin, "gantool-no-such-plugin")


def test_unregistered_name_fails():
    fails("registered", check_loss, "no-such-loss")


def test_every_rule_is_checked_somewhere_and_every_rule_raised_is_listed():
    """The rule names the kit raises (the literal rule argument of each fail/require/step/ConformanceError call in
    gantoolkit/testing.py) are exactly RULES: no rule is listed that nothing checks, none is raised unlisted.
    (That the guide documents each one is tests/test_plugin_guide.py's.)"""
    import ast
    import inspect

    import gantoolkit.testing as kit

    position = {"fail": 0, "require": 1, "step": 0, "ConformanceError": 1}
    raised = set()
    for node in ast.walk(ast.parse(inspect.getsource(kit))):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name in position and len(node.args) > position[name]:
                arg = node.args[position[name]]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    raised.add(arg.value)
    assert raised == set(RULES)


def test_options_the_factory_refuses_fail_and_needed_options_skip():
    fails("options", check_loss, "bce", {"label_smoothing": "0.9"})
    fails("options", check_loss, "bce", {"smoothing": "0.1"})

    class NeedsAFile(Loss):
        def __init__(self, path: str) -> None:
            self.path = path

    with pytest.raises(ComponentUnavailable, match="without options"):
        check_loss(NeedsAFile)


def test_broken_metrics_fail_with_their_rule():
    from gantoolkit.evaluation import Metric

    class Undeclared(Metric):
        keys = ("score",)

        def compute(self, ctx):
            return {"other": 1.0}

    class Noisy(Metric):
        keys = ("noise",)

        def compute(self, ctx):
            return {"noise": float(torch.rand(()))}

    class Wordy(Metric):
        keys = ("verdict",)

        def compute(self, ctx):
            return {"verdict": "good"}

    fails("metric-values", check_metric, Undeclared)
    fails("metric-deterministic", check_metric, Noisy)
    fails("metric-values", check_metric, Wordy)
