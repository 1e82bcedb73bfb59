"""Device paths: the gradient penalty under bf16 and fp16 autocast, mixed precision in the trainer, channels_last,
torch.compile, and the one generator pass per critic step. Speed itself is measured in benchmarks/, never here."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from gantoolkit import device as device_module
from gantoolkit.components import PenaltyContext
from gantoolkit.config import RunConfig, apply_layer
from gantoolkit.data import DataInfo
from gantoolkit.device import autocast
from tests.conftest import TINY_DCGAN

CPU = torch.device("cpu")
GP_RUN = [*TINY_DCGAN, "--loss", "wgan-gp", "--cond", "onehot", "--image-size", "8", "--device", "cpu",
          "--log-every", "1"]


def tiny_models(loss: str = "wgan-gp"):
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry

    torch.manual_seed(0)
    config = apply_layer(RunConfig(), {"arch": {"name": "dcgan", "ngf": 8, "ndf": 8}, "loss": loss, "cond": "onehot",
                                       "latent_dim": 16}, "test")
    return build_models(config, DataInfo("t", "image", (1, 16, 16), num_classes=10), get_registry())


def make_trainer(tmp_path: Path, **settings):
    from gantoolkit.data.loading import load_dataset
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry
    from gantoolkit.training.trainer import Trainer

    config = apply_layer(RunConfig(), {"arch": {"name": "dcgan", "ngf": 8, "ndf": 8}, "latent_dim": 16,
                                       "batch_size": 16, "image_size": 8, "device": "cpu", **settings}, "test")
    registry = get_registry()
    torch.manual_seed(config.validate().seed)
    dataset = load_dataset(config, registry)
    return Trainer(build_models(config, dataset.info, registry), dataset, tmp_path, CPU)


def penalty_and_grads(models, real, fake, labels, dtype=None, scaler=None):
    critic = models.critic
    critic.zero_grad(set_to_none=True)
    ctx = PenaltyContext(functools.partial(critic, labels=labels), real, fake, torch.Generator().manual_seed(1), 0,
                         scaler)
    with autocast(CPU, dtype):
        penalty = models.loss.penalty(ctx)
    penalty.backward()
    return penalty.detach(), torch.cat([p.grad.flatten() for p in critic.parameters()])


# -- the gradient penalty in every precision ---------------------------------------------------------------------


def test_gradient_penalty_under_bf16_autocast_is_finite_and_agrees_with_fp32():
    models = tiny_models()
    real, labels = torch.rand(16, 1, 16, 16) * 2 - 1, torch.arange(16) % 10
    with torch.no_grad():
        fake = models.generator(torch.randn(16, 16), labels)
    exact, exact_grads = penalty_and_grads(models, real, fake, labels)
    half, half_grads = penalty_and_grads(models, real, fake, labels, torch.bfloat16)
    assert torch.isfinite(half) and torch.isfinite(half_grads).all()
    assert half.item() == pytest.approx(exact.item(), rel=0.03)
    assert torch.nn.functional.cosine_similarity(half_grads, exact_grads, dim=0) > 0.99
    assert (half_grads.norm() / exact_grads.norm()).item() == pytest.approx(1.0, rel=0.05)


def test_fp16_loss_scaling_keeps_the_small_input_gradients_that_plain_fp16_loses():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 4, 3)

    def critic(x):  # gradients of ~1e-8 per activation: below fp16's smallest number
        return conv(x).float().sum(dim=(1, 2, 3)) * 1e-8

    x = torch.randn(4, 1, 8, 8, requires_grad=True)

    def gradients(scaler=None):  # what a penalty gets from ctx.gradients in the trainer's critic step
        return PenaltyContext(critic, x, x, torch.Generator(), 0, scaler).gradients(critic(x).sum(), x)

    (exact,) = gradients()
    with autocast(CPU, torch.float16):
        (plain,) = gradients()
        (scaled,) = gradients(torch.amp.GradScaler("cpu"))
    assert exact.abs().max() > 0 and plain.abs().max() == 0  # plain fp16 underflows to nothing
    torch.testing.assert_close(scaled, exact, rtol=2e-2, atol=exact.abs().max().item() * 2e-2)


def test_fp16_penalty_with_a_scaler_agrees_with_fp32():
    models = tiny_models()
    real, labels = torch.rand(16, 1, 16, 16) * 2 - 1, torch.arange(16) % 10
    with torch.no_grad():
        fake = models.generator(torch.randn(16, 16), labels)
    exact, exact_grads = penalty_and_grads(models, real, fake, labels)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    half, half_grads = penalty_and_grads(models, real, fake, labels, torch.float16, scaler)
    assert half.item() == pytest.approx(exact.item(), rel=0.03)
    assert torch.nn.functional.cosine_similarity(half_grads, exact_grads, dim=0) > 0.99


# -- mixed precision in the trainer ------------------------------------------------------------------------------


def test_amp_on_the_cpu_trains_wgan_gp_in_bf16(cli, tmp_path):
    result = cli("train", *GP_RUN, "--amp", "--steps", "3", "--out", "run")
    assert result.exit_code == 0, result.output
    assert "amp bfloat16" in result.output
    records = [json.loads(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(abs(r["loss_d"]) < 1e4 for r in records)
    assert cli("sample", "run", "--n", "4", "--out", "x.npz").exit_code == 0


def test_fp16_with_a_loss_scaler_trains_logs_skipped_updates_and_resumes(cli, monkeypatch):
    import gantoolkit.training.trainer

    monkeypatch.setattr(gantoolkit.training.trainer, "amp_dtype", lambda device, requested: torch.float16)
    result = cli("train", *GP_RUN, "--steps", "4", "--checkpoint-every", "2", "--out", "run")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert all("amp_skipped" in r and 0 <= r["amp_skipped"] <= 1 for r in records)
    with safe_open("run/checkpoints/step-00000002.safetensors", "pt") as f:
        scalers = json.loads(f.metadata()["scalers"])
    assert scalers["critic"]["scale"] > 0 and scalers["generator"]["scale"] > 0
    Path("run/checkpoints/step-00000004.safetensors").unlink()
    resumed = cli("train", "--resume", "run")
    assert resumed.exit_code == 0, resumed.output
    assert Path("run/checkpoints/step-00000004.safetensors").exists()


# -- layouts, compilation, and the step's structure ---------------------------------------------------------------


def test_channels_last_trains_like_the_default_layout(tmp_path, monkeypatch):
    import gantoolkit.training.trainer

    plain = make_trainer(tmp_path / "a", loss="wgan-gp", cond="onehot")
    monkeypatch.setattr(gantoolkit.training.trainer, "channels_last", lambda device, image: image)
    fast = make_trainer(tmp_path / "b", loss="wgan-gp", cond="onehot")
    weight = fast.D.body.main[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    x, _ = fast.batches.next()
    assert x.is_contiguous(memory_format=torch.channels_last)
    fast.batches.load_state_dict({"epoch": 0, "position": 0})
    for _ in range(2):
        a, b = plain.train_step(), fast.train_step()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-4)
    tensors, _ = fast.state()
    assert all(t.is_contiguous() for t in tensors.values())  # what safetensors needs


@pytest.mark.parametrize(("g_batch", "passes"),
                         [("reuse", [False, False, True]), ("fresh", [False, False, False, True])])
def test_the_generator_step_reuses_the_last_fake_batch_or_draws_fresh_noise(tmp_path, g_batch, passes):
    """reuse: one generator pass per critic step, the last one kept for the update (pytorch/examples); fresh: the
    critic steps' passes without a graph, then one more on new noise (the course's algorithm)."""
    trainer = make_trainer(tmp_path, loss="wgan", n_critic=3, g_batch=g_batch)
    calls: list[bool] = []
    trainer.G.register_forward_hook(lambda module, args, out: calls.append(out.requires_grad))
    g_before = [p.detach().clone() for p in trainer.G.parameters()]
    losses = trainer.train_step()
    assert calls == passes
    assert all(torch.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, trainer.G.parameters(), strict=True))


def test_compile_keeps_checkpoint_keys_and_the_eager_penalty(cli, monkeypatch):
    # dynamo capture and AOTAutograd without the C++ compiler (the inductor run is the slow test below)
    monkeypatch.setattr(device_module.torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    result = cli("train", *GP_RUN, "--steps", "2", "--compile", "--out", "run")
    assert result.exit_code == 0, result.output
    with safe_open("run/checkpoints/step-00000002.safetensors", "pt") as f:
        assert not [k for k in f.keys() if "_orig_mod" in k]  # noqa: SIM118 (safe_open is not iterable)
    assert cli("sample", "run", "--n", "4", "--out", "x.npz").exit_code == 0
    # a checkpoint chooses no --compile: a resume that wants it says so
    assert cli("train", "--resume", "run", "--steps", "3", "--compile").exit_code == 0


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("GANTOOL_TEST_COMPILE") != "1", reason="takes minutes: GANTOOL_TEST_COMPILE=1")
def test_compile_with_inductor_on_the_cpu(cli):
    result = cli("train", *GP_RUN, "--steps", "2", "--compile", "--out", "run")
    assert result.exit_code == 0, result.output


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cuda_mixed_precision_channels_last_and_penalty(cli, monkeypatch, amp):
    import gantoolkit.training.trainer

    if amp == "fp16":
        monkeypatch.setattr(gantoolkit.training.trainer, "amp_dtype", lambda device, requested: torch.float16)
    elif not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    run = [*TINY_DCGAN, "--loss", "wgan-gp", "--cond", "onehot", "--image-size", "16", "--device", "cuda", "--amp"]
    result = cli("train", *run, "--steps", "4", "--log-every", "1", "--out", "gpu")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in Path("gpu/metrics.jsonl").read_text().splitlines()]
    assert all(abs(r["loss_d"]) < 1e4 for r in records)
    assert cli("sample", "gpu", "--n", "4", "--out", "g.npz").exit_code == 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_dataset_too_large_for_the_gpu_stays_in_host_memory_with_the_same_batches(monkeypatch):
    import gantoolkit.data
    from gantoolkit.data import Dataset, DeviceBatches

    info = DataInfo("t", "image", (1, 4, 4), num_classes=2)
    dataset = Dataset(info, torch.randint(0, 256, (64, 1, 4, 4), dtype=torch.uint8), torch.arange(64) % 2)
    cuda = torch.device("cuda")
    on_device = DeviceBatches(dataset, 16, cuda, seed=0)
    monkeypatch.setattr(gantoolkit.data, "DEVICE_SHARE", 0.0)
    on_host = DeviceBatches(dataset, 16, cuda, seed=0)
    assert on_device.data.is_cuda and not on_host.data.is_cuda
    for _ in range(6):
        (a, ya), (b, yb) = on_device.next(), on_host.next()
        assert b.is_cuda and torch.equal(a, b) and torch.equal(ya, yb)
