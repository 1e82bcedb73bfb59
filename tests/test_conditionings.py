"""Conditionings with trainable parts (issue 15, item 4): `embed`, `cbn` and `acgan` train, resume bit for bit,
sample and pass the kit, and their parameters change in training; the kit fails a scheme whose embedding never
trains; an architecture without conditional normalisation is refused; onehot checkpoints written before all this
still load, sample and resume."""

from __future__ import annotations

import dataclasses
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import gantoolkit
from gantoolkit.builtin.archs.mlp import MLP
from gantoolkit.components import Architecture, Conditioning
from gantoolkit.config import RunConfig, apply_layer
from gantoolkit.errors import ConfigError
from gantoolkit.layers import ConditionalBatchNorm, takes_labels
from gantoolkit.models import build_models
from gantoolkit.registry import Registry, use_registry
from gantoolkit.testing import ConformanceError, check_architecture, check_conditioning, plugin_registry, tiny_info
from tests.conftest import TINY_DCGAN

pytestmark = pytest.mark.usefixtures("one_thread")

#: per scheme, the checkpoint prefixes of the parameters it brings: its generator side, its critic side
OWN = {
    "embed": ("generator.cond_module.", "critic.cond_module."),
    "cbn": ("generator.body.main.1.", "critic.cond_module."),  # the first conditional BatchNorm; the projection
    "acgan": ("generator.cond_module.", "critic.cond_module."),
}
#: a onehot run written before conditionings could own parts, and the command that wrote it
OLD_ONEHOT = Path(__file__).parent / "data" / "onehot-before-learned-conditionings.safetensors"
OLD_ONEHOT_ARGS = ["train", *TINY_DCGAN, "--image-size", "8", "--loss", "bce", "--cond", "onehot", "--ema", "0.9",
                   "--lr-decay", "0", "--steps", "2", "--checkpoint-every", "2"]


def train_args(*extra: str) -> list[str]:
    return ["train", *TINY_DCGAN, "--image-size", "8", "--log-every", "2", *extra]


def checkpoint(run: str, step: int) -> dict[str, torch.Tensor]:
    return load_file(f"{run}/checkpoints/step-{step:08d}.safetensors")


@pytest.mark.parametrize("cond", sorted(OWN))
def test_trains_resumes_bit_for_bit_samples_and_trains_its_own_parameters(cli, cond):
    common = ("--loss", "bce", "--cond", cond, "--ema", "0.9", "--lr-decay", "0", "--checkpoint-every", "2")
    straight = cli(*train_args(*common, "--steps", "4", "--out", "straight"))
    assert straight.exit_code == 0, straight.output
    assert cli(*train_args(*common, "--steps", "2", "--out", "split")).exit_code == 0
    resumed = cli("train", "--resume", "split", "--steps", "4")
    assert resumed.exit_code == 0, resumed.output
    want, got = checkpoint("straight", 4), checkpoint("split", 4)
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)

    two = checkpoint("straight", 2)
    for prefix in OWN[cond]:
        own = [k for k in want if k.startswith(prefix)]
        assert own, f"{cond} saves no {prefix}*"
        assert all(not torch.equal(two[k], want[k]) for k in own), f"{cond}: {prefix}* did not change"
        if prefix.startswith("generator."):  # the EMA generator averages the scheme's generator parameters too
            assert all(k.replace("generator.", "ema.module.", 1) in want for k in own)

    result = cli("sample", "straight", "--n", "20", "--class", "3", "--out", "threes.npz")
    assert result.exit_code == 0, result.output
    arrays = np.load("threes.npz")
    assert arrays["images"].shape == (20, 1, 8, 8) and set(arrays["labels"]) == {3}
    assert cli("sample", "straight", "--n", "20", "--out", "grid.png").exit_code == 0


@pytest.mark.parametrize("cond", sorted(OWN))
def test_passes_the_conformance_kit(cond):
    check_conditioning(cond)


def test_the_schemes_use_what_they_own():
    registry = Registry.load()
    info = tiny_info((1, 8, 8), classes=3)

    def build(cond: str):
        config = apply_layer(RunConfig(), {"cond": cond, "arch": {"name": "dcgan", "ngf": 4, "ndf": 4},
                                           "latent_dim": 6}, "t")
        return build_models(config, info, registry)

    embed = build("embed")
    assert isinstance(embed.generator.cond_module, nn.Embedding) and embed.generator.body.main[0].in_channels == 6 + 32
    assert isinstance(embed.critic.cond_module, nn.Embedding) and embed.critic.body.main[0].in_channels == 1
    cbn = build("cbn")
    norms = [m for m in cbn.generator.body.modules() if takes_labels(m)]
    assert norms and all(isinstance(m, ConditionalBatchNorm) for m in norms)
    assert cbn.generator.cond_module is None and cbn.generator.body.main[0].in_channels == 6
    assert not any(isinstance(m, nn.BatchNorm2d) and m.affine for m in cbn.generator.body.modules())
    acgan = build("acgan")
    assert isinstance(acgan.critic.cond_module, nn.Linear) and acgan.critic.cond_module.out_features == 3
    x, y = torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    h = acgan.critic.body.features(x)
    assert torch.equal(acgan.critic(x, y), acgan.critic.body.head(h))  # the score stays the critic's own


def test_acgan_adds_its_cross_entropy_to_both_losses():
    from gantoolkit.builtin.conditionings.learned import ACGAN
    from gantoolkit.components import ControllerContext

    acgan = ACGAN(weight=0.5)
    acgan.setup(tiny_info((1, 8, 8), classes=3))
    classifier = acgan.critic_module(4)
    fake_h, real_h = torch.randn(5, 4), torch.randn(5, 4)
    fake_y, real_y = torch.tensor([0, 1, 2, 0, 1]), torch.tensor([2, 2, 1, 0, 0])
    ce = nn.functional.cross_entropy
    d = acgan.discriminator_term(ControllerContext(torch.zeros(5, 1, 8, 8), fake_h, None, fake_y, classifier,
                                                   torch.zeros(5, 1, 8, 8), real_h, real_y))
    g = acgan.generator_term(ControllerContext(torch.zeros(5, 1, 8, 8), fake_h, None, fake_y, classifier))
    assert d.item() == pytest.approx(0.5 * (ce(classifier(fake_h), fake_y) + ce(classifier(real_h), real_y)).item())
    assert g.item() == pytest.approx(0.5 * ce(classifier(fake_h), fake_y).item())
    with pytest.raises(ConfigError, match="weight cannot be negative"):
        ACGAN(weight=-1)


# -- the kit fails parameters that never train -----------------------------------------------------------------


class KeptEmbedding(Conditioning):
    """The old way to learn an embedding: made in setup and kept on self, so neither network holds it."""

    def setup(self, data) -> None:
        super().setup(data)
        self.embedding = nn.Embedding(self.num_classes, 4)

    @property
    def generator_extra_dim(self) -> int:
        return 4

    def generator_vector(self, labels):
        return self.embedding(labels)


class FrozenEmbedding(Conditioning):
    """An embedding handed to the generator, but frozen."""

    @property
    def generator_extra_dim(self) -> int:
        return 4

    def generator_module(self):
        return nn.Embedding(self.num_classes, 4).requires_grad_(False)

    def generator_vector(self, labels, module):
        return module(labels)


class TrainedEmbedding(FrozenEmbedding):
    def generator_module(self):
        return nn.Embedding(self.num_classes, 4)


def test_the_kit_fails_an_embedding_that_never_trains():
    for scheme, where in ((KeptEmbedding, "self.embedding.weight"), (FrozenEmbedding, "generator_module.weight")):
        with pytest.raises(ConformanceError) as error:
            check_conditioning(scheme)
        assert error.value.rule == "parameters-train" and where in str(error.value), str(error.value)
    check_conditioning(TrainedEmbedding)  # the same scheme, trained, passes


# -- architectures and conditional normalisation ---------------------------------------------------------------


class PlainMLP(MLP):
    supports_conditional_norm = False


class ClaimsNorms(Architecture):
    """Says it supports conditional normalisation, but builds its generator without the conditioning's layers."""

    supports_conditional_norm = True

    def build(self, spec):
        return MLP(16, 2, 2).build(dataclasses.replace(spec, generator_norm=None))


def arch_plugin(name: str, factory) -> types.ModuleType:
    module = types.ModuleType(f"test-{name}")

    def register_architectures(register):
        register(name, factory, summary="under test")

    module.register_architectures = gantoolkit.hookimpl(register_architectures)  # type: ignore[attr-defined]
    return module


def test_an_architecture_without_conditional_norm_is_refused_in_one_line(cli):
    with use_registry(plugin_registry(arch_plugin("plain-mlp", PlainMLP))):
        result = cli("train", "--arch", "plain-mlp", "--cond", "cbn", "--image-size", "8", "--steps", "1")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "'plain-mlp' does not support" in errors[0], result.output
    assert errors[0].startswith("error: conditioning 'cbn' replaces the generator's normalisation layers")
    assert "use --arch dcgan or mlp, or another --cond" in result.output  # those that support it, not plain-mlp
    assert not Path("runs").exists()  # nothing written


def test_an_architecture_that_claims_conditional_norm_but_ignores_it_is_caught():
    registry = plugin_registry(arch_plugin("claims-norms", ClaimsNorms))
    config = apply_layer(RunConfig(), {"cond": "cbn", "arch": "claims-norms"}, "t")
    with pytest.raises(ConfigError, match="built no such layer"):
        build_models(config, tiny_info((2,)), registry)
    with pytest.raises(ConformanceError) as error:
        check_architecture("claims-norms", registry=registry, train=False)
    assert error.value.rule == "conditional-norm"


def test_pac_passes_conditional_norm_to_its_base():
    config = apply_layer(RunConfig(), {"cond": "cbn", "arch": {"name": "pac", "base": "dcgan", "pack": 2, "ngf": 4,
                                                               "ndf": 4}}, "t")
    models = build_models(config, tiny_info((1, 8, 8)), Registry.load())
    assert any(takes_labels(m) for m in models.generator.body.modules())
    z, y, _ = models.sample_inputs(4, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert models.critic(models.generator(z, y), y).shape == (4,)


# -- old checkpoints -------------------------------------------------------------------------------------------


def test_a_onehot_checkpoint_from_before_learned_conditionings_samples_and_resumes(cli, tmp_path):
    """A onehot checkpoint written by gantoolkit before conditionings could own parts (by OLD_ONEHOT_ARGS) holds the
    same tensors as one written now, samples and resumes."""
    old = load_file(str(OLD_ONEHOT))
    assert cli(*OLD_ONEHOT_ARGS, "--out", "new").exit_code == 0
    new = checkpoint("new", 2)
    assert old.keys() == new.keys()
    assert all(old[k].shape == new[k].shape and old[k].dtype == new[k].dtype for k in old)
    result = cli("sample", OLD_ONEHOT, "--n", "10", "--class", "7", "--out", "sevens.npz")
    assert result.exit_code == 0, result.output
    assert set(np.load("sevens.npz")["labels"]) == {7}
    shutil.copyfile(OLD_ONEHOT, "new/checkpoints/step-00000002.safetensors")  # the run continues from the old file
    resumed = cli("train", "--resume", "new", "--steps", "3")
    assert resumed.exit_code == 0, resumed.output
    assert (tmp_path / "new/checkpoints/step-00000003.safetensors").exists()
