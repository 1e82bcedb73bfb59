"""Each built-in architecture, loss and conditioning against what the course and the anchors specify."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gantoolkit.builtin.archs.dcgan import DCGAN
from gantoolkit.builtin.archs.mlp import MLP
from gantoolkit.builtin.conditionings.onehot import OneHot, Unconditional
from gantoolkit.builtin.losses.bce import BCE
from gantoolkit.builtin.losses.wasserstein import WGAN, WGANGP
from gantoolkit.components import ModelSpec, PenaltyContext
from gantoolkit.config import RunConfig, apply_layer
from gantoolkit.data import IMAGE, VECTOR, DataInfo
from gantoolkit.errors import ConfigError
from gantoolkit.models import build_models
from gantoolkit.registry import Registry


def image_info(c=1, s=16, k=0):
    return DataInfo("test", IMAGE, (c, s, s), k, tuple(str(i) for i in range(k)))


def spec_for(info, latent=8, extra_g=0, extra_d=0, bn=True):
    return ModelSpec(info, latent, latent + extra_g, (info.shape[0] + extra_d, *info.shape[1:]), bn)


def reference_dcgan(nz=100, ngf=64, ndf=64, nc=3):
    """pytorch/examples dcgan/main.py, verbatim in structure."""
    g = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
    )
    return g, d


def shapes(module):
    return [tuple(p.shape) for p in module.parameters()]


def test_dcgan_at_64_is_exactly_the_pytorch_examples_model():
    info = image_info(3, 64)
    g, d = DCGAN().build(spec_for(info, latent=100))
    ref_g, ref_d = reference_dcgan()
    assert shapes(g) == shapes(ref_g)
    assert shapes(d) == shapes(ref_d)
    # the same computation: copy the reference weights in and compare outputs
    for mine, theirs in ((g, ref_g), (d, ref_d)):
        for p, q in zip(mine.parameters(), theirs.parameters(), strict=True):
            q.data.copy_(p.data)
        mine.eval(), theirs.eval()
    z = torch.randn(2, 100)
    assert torch.allclose(g(z), ref_g(z.view(2, 100, 1, 1)), atol=1e-6)
    x = torch.randn(2, 3, 64, 64)
    assert torch.allclose(d(x), ref_d(x).view(-1), atol=1e-5)


def test_dcgan_init_follows_the_paper():
    torch.manual_seed(0)
    g, _ = DCGAN().build(spec_for(image_info(3, 64), latent=100))
    conv = g.main[0].weight
    bn = g.main[1].weight
    assert abs(conv.std().item() - 0.02) < 0.002 and abs(conv.mean().item()) < 0.002
    assert abs(bn.mean().item() - 1.0) < 0.01 and abs(bn.std().item() - 0.02) < 0.01


@pytest.mark.parametrize("size", [8, 16, 32, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_any_power_of_two(size, channels):
    info = image_info(channels, size)
    g, d = DCGAN(ngf=4, ndf=4).build(spec_for(info))
    x = g(torch.randn(3, 8))
    assert x.shape == (3, channels, size, size) and x.min() >= -1 and x.max() <= 1
    h = d.features(x)
    assert h.shape == (3, d.feature_dim)
    assert d.head(h).shape == (3,)


@pytest.mark.parametrize("size", [12, 4, 100])
def test_dcgan_refuses_sizes_it_cannot_make(size):
    with pytest.raises(ConfigError, match="power of two"):
        DCGAN().check(image_info(1, size))


def test_dcgan_critic_without_batchnorm_when_the_loss_forbids_it():
    _, d = DCGAN(ngf=4, ndf=4).build(spec_for(image_info(1, 32), bn=False))
    kinds = {type(m) for m in d.modules()}
    assert nn.BatchNorm2d not in kinds and nn.GroupNorm in kinds
    with pytest.raises(ConfigError, match="forbids BatchNorm"):
        DCGAN(critic_norm="batch").build(spec_for(image_info(1, 32), bn=False))


def test_dcgan_resize_upsampling_has_no_transposed_convolutions_after_the_first():
    g, _ = DCGAN(ngf=4, ndf=4, upsample="resize").build(spec_for(image_info(1, 32)))
    transposed = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(transposed) == 1
    assert g(torch.randn(2, 8)).shape == (2, 1, 32, 32)


def test_mlp_is_the_course_vanilla_gan():
    info = DataInfo("toy", VECTOR, (2,))
    g, d = MLP(hidden_dim=16).build(spec_for(info, latent=4))
    linear = [m for m in g.main if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linear] == [16, 32, 64, 128, 2]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in g.main) == 4
    assert not any(isinstance(m, nn.Tanh) for m in g.main)  # vectors are unbounded
    assert [m.out_features for m in d.main if isinstance(m, nn.Linear)] == [64, 32, 16]
    assert any(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in d.main)
    g.eval()
    assert g(torch.randn(5, 4)).shape == (5, 2)
    assert d(torch.randn(5, 2)).shape == (5,)


def test_mlp_on_images_flattens_and_bounds_output():
    g, d = MLP(hidden_dim=8).build(spec_for(image_info(1, 8), latent=4, extra_d=3))
    x = g(torch.randn(4, 4))
    assert x.shape == (4, 1, 8, 8) and x.abs().max() <= 1
    assert d(torch.randn(4, 4, 8, 8)).shape == (4,)


def test_bce_on_logits_matches_the_course_formula_and_never_gives_inf():
    loss = BCE()
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    expected = -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())
    assert torch.allclose(loss.discriminator_loss(real, fake), expected)
    extreme = torch.tensor([1e4, -1e4])
    assert torch.isfinite(loss.discriminator_loss(extreme, -extreme))
    assert torch.isfinite(loss.generator_loss(-extreme))


def test_bce_generator_forms_and_label_smoothing():
    fake = torch.tensor([-6.0])  # the critic is winning: D(G(z)) is near 0
    ns = torch.tensor([-6.0], requires_grad=True)
    BCE().generator_loss(ns).backward()
    mm = torch.tensor([-6.0], requires_grad=True)
    BCE(generator_loss="minimax").generator_loss(mm).backward()
    assert abs(mm.grad.item()) < 0.01 < abs(ns.grad.item())  # minimax gradients vanish, non-saturating do not
    minimax = BCE(generator_loss="minimax").generator_loss(fake)
    assert torch.allclose(minimax, torch.log(1 - torch.sigmoid(fake)).mean(), atol=1e-6)
    smooth = BCE(label_smoothing=0.1)
    r = torch.tensor([3.0])
    expected = F.binary_cross_entropy_with_logits(r, torch.tensor([0.9]))
    assert torch.allclose(smooth.discriminator_loss(r, torch.tensor([-50.0])), expected, atol=1e-6)
    with pytest.raises(ConfigError):
        BCE(label_smoothing=0.7)


def test_wgan_losses_and_clipping():
    loss = WGAN(clip=0.05)
    assert loss.n_critic == 5 and loss.optimizer().name == "rmsprop" and loss.optimizer().lr == 5e-5
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.5 - 2.0)
    assert loss.generator_loss(fake).item() == pytest.approx(-0.5)
    critic = nn.Linear(4, 1)
    nn.init.normal_(critic.weight, std=1.0)
    loss.after_discriminator_step(critic)
    assert all(p.abs().max() <= 0.05 for p in critic.parameters())


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic_and_positive_otherwise():
    loss = WGANGP()
    assert not loss.critic_batchnorm and loss.n_critic == 5
    assert loss.optimizer().betas == (0.0, 0.9) and loss.optimizer().lr == 1e-4
    real, fake = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    w = torch.randn(16)
    unit = w / w.norm()

    def ctx(critic, step=0):
        return PenaltyContext(critic, real, fake, torch.Generator().manual_seed(0), step)

    assert loss.penalty(ctx(lambda x: x.flatten(1) @ unit)).item() == pytest.approx(0.0, abs=1e-10)
    steep = loss.penalty(ctx(lambda x: x.flatten(1) @ (3 * unit)))
    assert steep.item() == pytest.approx(10 * (3 - 1) ** 2, rel=1e-5)
    steep_param = torch.tensor(3.0, requires_grad=True)
    loss.penalty(ctx(lambda x: steep_param * (x.flatten(1) @ unit))).backward()
    assert steep_param.grad.item() > 0  # the penalty trains the critic towards unit gradients


def test_r1_penalises_the_critics_gradient_on_real_data_only():
    """γ/2 · E‖∇ₓD(x)‖² at the real points: x·w has gradient w everywhere, x² has gradient 2x."""
    real, fake = torch.randn(8, 2), torch.randn(8, 2) + 100  # the fakes must not enter
    w = torch.tensor([3.0, -1.0])

    def ctx(critic):
        return PenaltyContext(critic, real, fake, torch.Generator().manual_seed(0), 0)

    assert BCE().penalty(ctx(lambda x: x @ w)) is None and BCE().critic_batchnorm
    loss = BCE(r1=0.5)
    assert not loss.critic_batchnorm
    assert loss.penalty(ctx(lambda x: x @ w)).item() == pytest.approx(0.25 * 10.0, rel=1e-6)
    quadratic = loss.penalty(ctx(lambda x: (x**2).sum(1)))
    assert quadratic.item() == pytest.approx(0.25 * float((4 * real**2).sum(1).mean()), rel=1e-5)
    scale = torch.tensor(2.0, requires_grad=True)
    loss.penalty(ctx(lambda x: scale * (x @ w))).backward()
    assert scale.grad.item() > 0  # the penalty trains the critic towards flatness at the data
    with pytest.raises(ConfigError, match="r1 cannot be negative"):
        BCE(r1=-1.0)


def test_lazy_gradient_penalty_skips_and_scales():
    loss = WGANGP(lazy_every=4)
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    critic = lambda x: x @ torch.tensor([3.0, 0.0])  # noqa: E731
    at = [loss.penalty(PenaltyContext(critic, real, fake, torch.Generator().manual_seed(0), s)) for s in range(4)]
    assert at[1] is None and at[2] is None and at[3] is None
    assert at[0].item() == pytest.approx(4 * 10 * 4.0, rel=1e-5)


def test_onehot_vector_for_g_and_planes_for_d():
    cond = OneHot()
    cond.setup(image_info(1, 4, k=3))
    y = torch.tensor([2, 0])
    assert cond.generator_vector(y).tolist() == [[0, 0, 1], [1, 0, 0]]
    x = torch.zeros(2, 1, 4, 4)
    xin = cond.discriminator_input(x, y)
    assert xin.shape == (2, 4, 4, 4)
    assert xin[0, 3].eq(1).all() and xin[0, 1:3].eq(0).all() and xin[1, 1].eq(1).all()
    vec = cond.discriminator_input(torch.zeros(2, 2), y)
    assert vec.tolist() == [[0, 0, 0, 0, 1], [0, 0, 1, 0, 0]]
    assert not Unconditional().requires_labels


def test_models_compose_conditioning_into_both_networks():
    registry = Registry.load()
    config = apply_layer(RunConfig(), {"cond": "onehot", "arch": {"name": "dcgan", "ngf": 4, "ndf": 4},
                                       "latent_dim": 6}, "t")
    models = build_models(config, image_info(1, 8, k=10), registry)
    assert models.generator.body.main[0].in_channels == 16  # z (6) + one-hot (10)
    assert models.critic.body.main[0].in_channels == 11  # image (1) + planes (10)
    z, y, codes = models.sample_inputs(4, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert y is not None and codes is None
    models.generator.eval()
    x = models.generator(z, y)
    assert models.critic(x, y).shape == (4,)
    assert models.provenance["arch"]["distribution"] == "gantoolkit"


def test_conditioning_on_unlabelled_data_is_refused():
    registry = Registry.load()
    config = apply_layer(RunConfig(), {"cond": "onehot"}, "t")
    with pytest.raises(ConfigError, match="needs labelled data"):
        build_models(config, image_info(1, 8, k=0), registry)


def test_parameter_counts_are_sane():
    g, d = DCGAN().build(spec_for(image_info(3, 64), latent=100))
    assert sum(p.numel() for p in g.parameters()) == 3_576_704
    assert math.isclose(sum(p.numel() for p in d.parameters()), 2_765_568)
