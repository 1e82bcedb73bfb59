"""gantool-sngan: its components pass gantoolkit's conformance kit, compose with the built-ins, and do what the
papers say (hinge values, spectral norms near 1, the projection term, SNGAN's block layout)."""

from __future__ import annotations

import pytest
import torch

from gantoolkit.data import DataInfo
from gantoolkit.testing import (
    check_architecture,
    check_command,
    check_conditioning,
    check_config,
    check_loss,
    check_training,
    tiny_dataset,
)

#: small widths: a few training steps take a fraction of a second
TINY = {"ngf": 8, "ndf": 8}


def test_components_record_this_distribution(registry):
    for kind, name in (("architecture", "resnet-sn"), ("loss", "hinge"), ("conditioning", "projection")):
        spec, _ = registry.get(kind, name)
        assert (spec.distribution, spec.version) == ("gantool-sngan", "0.1.0")


def test_resnet_sn_conforms(registry):
    check_architecture("resnet-sn", TINY, registry=registry)


def test_resnet_sn_defaults_conform(registry):
    check_architecture("resnet-sn", registry=registry, train=False)


def test_hinge_conforms(registry):
    check_loss("hinge", registry=registry)


def test_projection_conforms(registry):
    check_conditioning("projection", registry=registry)


def test_preset_and_command_conform(registry):
    check_config("sngan-digits", registry=registry)
    check_command("sngan", registry=registry)


@pytest.mark.parametrize(
    "arch, loss, cond, data",
    [
        ("resnet-sn", "hinge", "projection", (1, 16, 16)),  # the SNGAN recipe, at the digits' size
        ("dcgan", "bce", "projection", (3, 8, 8)),  # projection on a built-in critic's features
        ("resnet-sn", "wgan-gp", "onehot", (3, 8, 8)),  # a gradient penalty and one-hot input planes
        ("mlp", "hinge", "none", "toy:ring"),  # hinge on vectors
        ("mlp", "hinge", "projection", (2,)),  # projection on vectors
    ],
)
def test_composes_with_the_built_ins(registry, arch, loss, cond, data):
    options = {"arch": TINY} if arch == "resnet-sn" else None
    check_training(arch, loss, cond, options=options, data=data, registry=registry)


def test_hinge_values(registry):
    hinge = registry.create("loss", "hinge")
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    assert hinge.discriminator_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1.5) / 2)
    assert hinge.generator_loss(fake).item() == pytest.approx(0.75)
    recipe = hinge.optimizer()
    assert (recipe.name, recipe.lr, recipe.betas, hinge.n_critic) == ("adam", 2e-4, (0.0, 0.9), 5)


def _spec(shape, extra=0, batchnorm=True):
    from gantoolkit.components import ModelSpec

    info = DataInfo("test", "image", shape, 10)
    return ModelSpec(info, 16, 16 + extra, (shape[0] + extra, *shape[1:]), batchnorm)


def test_sngan_block_layout(registry):
    arch = registry.create("architecture", "resnet-sn", {"ngf": 16, "ndf": 16})
    g, d = arch.build(_spec((3, 32, 32)))
    assert len(g.blocks) == 3  # 4 -> 8 -> 16 -> 32
    assert [b.downsample for b in d.blocks] == [True, True, False, False]  # the paper's CIFAR critic
    assert d.blocks[0].first and not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    g8, d8 = arch.build(_spec((1, 8, 8)))
    assert len(g8.blocks) == 1 and [b.downsample for b in d8.blocks] == [True, False, False]


def test_critic_weights_have_spectral_norm_one(registry):
    torch.manual_seed(0)
    _, d = registry.create("architecture", "resnet-sn", {"ndf": 16}).build(_spec((1, 16, 16)))
    x = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        for _ in range(400):  # one power iteration per training-mode forward
            d(x)
    d.eval()
    layers = [m for m in d.modules() if hasattr(m, "parametrizations")]
    assert len(layers) == 1 + 2 * 3 + 1  # the linear head; two convs in each of 3 blocks; the first block's shortcut
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.01)


def test_projection_adds_the_class_embedding_inner_product(registry):
    torch.manual_seed(0)
    projection = registry.create("conditioning", "projection", {"spectral_norm": "false"})
    projection.setup(tiny_dataset((2,), classes=3).info)
    embed = projection.critic_module(5)
    head, features, labels = torch.randn(4), torch.randn(4, 5), torch.tensor([0, 2, 1, 2])
    expected = head + (embed.weight[labels] * features).sum(1)
    assert torch.allclose(projection.score(head, features, labels, embed), expected)
    assert projection.generator_extra_dim == 3 and projection.discriminator_extra_channels == 0


def test_refuses_what_it_cannot_model(registry):
    from gantoolkit.errors import ConfigError

    arch = registry.create("architecture", "resnet-sn")
    with pytest.raises(ConfigError, match="power of two"):
        arch.check(DataInfo("x", "image", (3, 24, 24)))
    with pytest.raises(ConfigError, match="use --arch mlp"):
        arch.check(DataInfo("x", "vector", (2,)))
    with pytest.raises(ConfigError, match="ndf"):
        registry.create("architecture", "resnet-sn", {"ndf": 0})


def test_builds_images_that_are_not_square(registry):
    """--image-size HxW: a rectangular first map (4 on the shorter side), the same number of blocks per side."""
    from gantoolkit.components import ModelSpec

    check_architecture("resnet-sn", TINY, registry=registry, shapes=[(3, 8, 16), (1, 32, 16)], train=False)
    arch = registry.create("architecture", "resnet-sn", TINY)
    info = DataInfo("x", "image", (3, 32, 16))
    g, d = arch.build(ModelSpec(data=info, latent_dim=8, generator_input_dim=8, discriminator_input_shape=(3, 32, 16)))
    assert len(g.blocks) == 2 and g.map_size == (8, 4)  # 8x4 -> 16x8 -> 32x16
    assert tuple(g(torch.randn(2, 8)).shape) == (2, 3, 32, 16) and tuple(d(torch.randn(2, 3, 32, 16)).shape) == (2,)
