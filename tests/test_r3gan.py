"""The `r3gan` architecture (issue 16, item 2): R3GAN's normalisation-free ResNet builds at every power-of-two size
for 1 and 3 channels, each residual block is the identity at initialisation, it passes the conformance kit with
onehot and projection conditioning, trains from the command line with EMA, resumes bit for bit, reports its
parameters per resolution in the banner, and refuses sizes and options it cannot build in one line (and conditional
BatchNorm, having no normalisation layers)."""

from __future__ import annotations

import math
import re
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

import gantoolkit
from gantoolkit.builtin.archs.r3gan import ACTIVATION_GAIN, R3GAN, Resample, ResidualBlock
from gantoolkit.components import Conditioning, ModelSpec
from gantoolkit.errors import ConfigError
from gantoolkit.testing import check_architecture, check_training, plugin_registry, tiny_info
from tests.conftest import TINY_DCGAN

pytestmark = pytest.mark.usefixtures("one_thread")

#: the tiny run's flags: DCGAN's batch and latent sizes with r3gan, at 8x8
TINY_R3GAN = [*TINY_DCGAN[6:], "--arch", "r3gan", "--image-size", "8", "--log-every", "2"]
NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def spec(channels: int, size: int, extra: int = 0, latent: int = 8) -> ModelSpec:
    info = tiny_info((channels, size, size))
    return ModelSpec(data=info, latent_dim=latent, generator_input_dim=latent + extra,
                     discriminator_input_shape=(channels + extra, size, size), critic_batchnorm=False)


@pytest.mark.parametrize("size", [8, 16, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_builds_at_every_size_for_grey_and_colour_images(size, channels):
    torch.manual_seed(0)
    g, d = R3GAN().build(spec(channels, size, extra=3))
    v = torch.randn(5, 8 + 3)
    x = g(v)
    assert x.shape == (5, channels, size, size) and x.abs().max() <= 1
    h = d.features(torch.cat([x, torch.randn(5, 3, size, size)], 1))  # onehot's planes as extra channels
    assert h.shape == (5, d.feature_dim) and d.feature_dim == 64
    assert d.head(h).shape == (5,)
    stages = int(math.log2(size)) - 1  # 4x4 up to size x size
    assert len(g.stages) == len(d.stages) == stages
    assert not [m for net in (g, d) for m in net.modules() if isinstance(m, NORMS)]  # no normalisation at all


def test_widths_blocks_expansion_and_groups_follow_the_options():
    arch = R3GAN(widths=(32, 16, 16), blocks=2, expansion=3, group_size=8, width_mult=2)
    assert arch.stage_widths(16) == [64, 32, 32]
    g, d = arch.build(spec(1, 16))
    blocks = [m for m in g.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 6 and [b.expand.out_channels for b in blocks[::2]] == [192, 96, 96]
    assert all(b.grouped.groups == b.grouped.in_channels // 8 for b in blocks)  # 8 channels per group
    assert [b.expand.in_channels for b in d.modules() if isinstance(b, ResidualBlock)] == [32, 32, 32, 32, 64, 64]
    assert R3GAN().stage_widths(64) == [64, 32, 16, 16, 16]  # min(256 / side, 64), at least 16


def test_each_residual_block_is_the_identity_at_initialisation_and_the_rest_is_variance_scaled():
    torch.manual_seed(0)
    g, d = R3GAN(blocks=2).build(spec(3, 16))
    for net in (g, d):
        blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
        assert len(blocks) == 6
        gain = ACTIVATION_GAIN * len(blocks) ** -0.25  # R3GAN: L^(-1/4) for L blocks
        for block in blocks:
            assert not block.project.weight.any()  # the branch's last convolution is zero
            x = torch.randn(2, block.expand.in_channels, 4, 4)
            assert torch.equal(block(x), x)
            for conv in (block.expand, block.grouped):
                want = gain / math.sqrt(conv.weight[0].numel())
                assert conv.weight.std().item() == pytest.approx(want, rel=0.2)
    # once the last convolution is not zero the block is no longer the identity
    block = next(m for m in g.modules() if isinstance(m, ResidualBlock))
    nn.init.normal_(block.project.weight)
    x = torch.randn(2, block.expand.in_channels, 4, 4)
    assert not torch.equal(block(x), x)


def test_resampling_is_r3gans_bilinear_filter_with_zero_padding_at_the_borders():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    up, down = Resample(up=True)(x), Resample(up=False)(x)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    # R3GAN's reference resamplers: the [1, 3, 3, 1] filter per channel, transposed (x4) or strided, padding 1
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    kernel = (torch.outer(k, k) / 64).view(1, 1, 4, 4)
    flat = x.reshape(6, 1, 8, 8)
    assert torch.allclose(up, F.conv_transpose2d(flat, 4 * kernel, stride=2, padding=1).view(2, 3, 16, 16))
    assert torch.allclose(down, F.conv2d(flat, kernel, stride=2, padding=1).view(2, 3, 4, 4))
    bilinear = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(up[..., 1:-1, 1:-1], bilinear[..., 1:-1, 1:-1], atol=1e-6)  # the interior
    antialiased = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)
    assert torch.allclose(down[..., 1:-1, 1:-1], antialiased[..., 1:-1, 1:-1], atol=1e-6)
    assert Resample(up=True).state_dict() == {}  # the filter is fixed, not saved


def test_passes_the_conformance_kit():
    check_architecture("r3gan")  # both bodies on 3x8x8 (vectors refused), then trains with onehot and resumes
    check_training("r3gan", "wgan-gp", "onehot", options={"arch": {"widths": (16, 16)}}, data=(1, 8, 8))


class Projection(Conditioning):
    """The projection discriminator (Miyato & Koyama 2018) through the critic's features: score = head(h) + <e_y, h>;
    the generator gets the one-hot vector."""

    @property
    def generator_extra_dim(self) -> int:
        return self.num_classes

    def generator_vector(self, labels, module=None):
        return F.one_hot(labels, self.num_classes).float()

    def critic_module(self, feature_dim: int) -> nn.Module:
        return nn.Embedding(self.num_classes, feature_dim)

    def score(self, head_scores, features, labels, module):
        return head_scores + (module(labels) * features).sum(1)


def test_projection_conditioning_through_the_critic_features_trains_and_resumes():
    plugin = types.ModuleType("projection-under-test")

    @gantoolkit.hookimpl
    def register_conditionings(register):
        register("projection-test", Projection, summary="projection through the critic's features")

    plugin.register_conditionings = register_conditionings  # type: ignore[attr-defined]
    check_training("r3gan", "bce", "projection-test", registry=plugin_registry(plugin), data=(3, 16, 16))


@pytest.mark.parametrize("cond", ["embed", "acgan"])
def test_the_built_in_learned_conditionings_train_and_resume(cond):
    check_training("r3gan", "bce", cond, options={"arch": {"widths": (32, 16)}}, data=(1, 8, 8))


def checkpoint(run: str, step: int) -> dict[str, torch.Tensor]:
    return load_file(f"{run}/checkpoints/step-{step:08d}.safetensors")


def test_trains_from_the_command_line_with_ema_reports_parameters_per_resolution_and_resumes_bit_for_bit(cli):
    common = ("--loss", "bce", "--loss-opt", "r1=1", "--cond", "onehot", "--ema", "0.9", "--lr-decay", "0",
              "--checkpoint-every", "2")
    straight = cli("train", *TINY_R3GAN, *common, "--steps", "4", "--out", "straight")
    assert straight.exit_code == 0, straight.output
    assert cli("train", *TINY_R3GAN, *common, "--steps", "2", "--out", "split").exit_code == 0
    resumed = cli("train", "--resume", "split", "--steps", "4")
    assert resumed.exit_code == 0, resumed.output
    want, got = checkpoint("straight", 4), checkpoint("split", 4)
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    before = checkpoint("straight", 2)
    ema = [k for k in want if k.startswith("ema.module.body.")]
    assert ema and any(not torch.equal(before[k], want[k]) for k in ema)  # the EMA generator moved
    assert not any("norm" in k for k in want if k.startswith("critic."))

    # the banner: parameters per resolution, which add up to the networks' totals
    banner = re.search(r"params G ([\d,]+) D ([\d,]+)\n\s*params by resolution: G (.*?)   D (.*?)\n",
                       straight.output)
    assert banner, straight.output
    total_g, total_d = (int(t.replace(",", "")) for t in banner.group(1, 2))
    for text, total, network in ((banner.group(3), total_g, "generator"), (banner.group(4), total_d, "critic")):
        counts = dict(re.findall(r"(\d+x\d+) ([\d,]+)", text))
        assert list(counts) == ["4x4", "8x8"]
        params = sum(v.numel() for k, v in want.items() if k.startswith(f"{network}.body."))
        assert sum(int(c.replace(",", "")) for c in counts.values()) == params
        extra = sum(v.numel() for k, v in want.items() if k.startswith(f"{network}.") and ".body." not in k)
        assert params + extra == total  # the conditioning's own parameters (none for onehot) are the rest
    result = cli("sample", "straight", "--n", "10", "--class", "4", "--out", "fours.png")
    assert result.exit_code == 0, result.output
    assert Path("fours.png").is_file()


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_sizes_and_options_it_cannot_build_are_refused_in_one_line(cli):
    one_line_error(cli("train", "--arch", "r3gan", "--image-size", "12", "--steps", "1", "--out", "r"),
                   "r3gan makes images whose height and width are each a power of two from 8 up, got 12x12",
                   "--image-size 16")
    one_line_error(cli("train", "--arch", "r3gan", "--arch-opt", "widths=64,32", "--image-size", "16", "--steps", "1",
                       "--out", "r"), "widths has 2 values", "3 resolutions")
    one_line_error(cli("train", "--arch", "r3gan", "--arch-opt", "group_size=24", "--steps", "1", "--out", "r"),
                   "not a multiple of group_size 24")
    one_line_error(cli("train", "--arch", "r3gan", "--arch-opt", "blocks=0", "--steps", "1", "--out", "r"),
                   "blocks must be at least 1")
    one_line_error(cli("train", "--arch", "r3gan", "--data", "toy:ring", "--steps", "1", "--out", "r"),
                   "r3gan models images", "--arch mlp")
    one_line_error(cli("train", "--arch", "r3gan", "--cond", "cbn", "--steps", "1", "--out", "r"),
                   "'cbn'", "'r3gan' does not support")  # it has no normalisation layers to make conditional
    assert not Path("r").exists()
    with pytest.raises(ConfigError, match="width_mult"):
        R3GAN(width_mult=0)
