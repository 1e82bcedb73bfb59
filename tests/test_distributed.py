"""Training on several processes: data shards, gradient averaging through the penalty's double backward, and real
2-process gloo runs on the CPU launched by `gantool train --nproc-per-node` and by torchrun."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gantoolkit.data import DataInfo, Dataset, DeviceBatches
from gantoolkit.training import distributed
from gantoolkit.training.distributed import Processes

GANTOOL = [sys.executable, "-c", "from gantoolkit.cli import main; main()"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
#: a tiny conditional WGAN-GP run on 8x8 digits: the penalty's double backward runs on both processes
RUN = ["--arch", "dcgan", "--arch-opt", "ngf=8", "--arch-opt", "ndf=8", "--latent-dim", "16", "--image-size", "8",
       "--batch-size", "16", "--loss", "wgan-gp", "--n-critic", "2", "--cond", "onehot", "--ema", "0.9",
       "--device", "cpu", "--log-every", "1", "--checkpoint-every", "2", "--sample-every", "2"]


def env() -> dict[str, str]:
    return {**os.environ, "GANTOOL_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=600)


# -- data shards ------------------------------------------------------------------------------------------------


def test_each_rank_takes_its_slice_of_the_same_batches():
    info = DataInfo("t", "image", (1, 2, 2), num_classes=3)
    dataset = Dataset(info, torch.arange(40 * 4, dtype=torch.uint8).view(40, 1, 2, 2), torch.arange(40) % 3)
    alone = DeviceBatches(dataset, 8, torch.device("cpu"), seed=3)
    ranks = [DeviceBatches(dataset, 8, torch.device("cpu"), 3, Processes(r, r, 2)) for r in range(2)]
    for _ in range(12):  # across epochs (5 batches each)
        x, y = alone.next()
        parts = [b.next() for b in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
    assert ranks[1].state_dict() == alone.state_dict()


def test_rank_seeds_differ_and_rank_0_keeps_the_single_process_seed():
    seeds = {Processes(r, r, 4).rank_seed(7) for r in range(4)}
    assert len(seeds) == 4 and Processes().rank_seed(7) == 7


def test_worker_arguments_reproduce_the_flags():
    args = distributed.worker_arguments(
        {"arch": "dcgan", "arch_opt": ["ngf=8", "ndf=8"], "amp": False, "download": True, "steps": 4, "seed": None,
         "out": Path("r"), "nproc_per_node": 2}, skip=["nproc_per_node"])
    assert args == ["--arch", "dcgan", "--arch-opt", "ngf=8", "--arch-opt", "ndf=8", "--no-amp", "--download",
                    "--steps", "4", "--out", "r"]
    launch = distributed.torchrun_arguments({"nproc_per_node": 2, "nnodes": "2", "rdzv_endpoint": "h:29400"},
                                            ["train", "--steps", "4"])
    assert launch == ["--nproc-per-node", "2", "--nnodes", "2", "--rdzv-endpoint", "h:29400",
                      "--rdzv-backend", "c10d", "-m", "gantoolkit", "train", "--steps", "4"]


# -- gradients averaged over processes == one process on the whole batch -------------------------------------------


#: critic objectives whose penalties see each shard's own reals and fakes: W-loss with the gradient penalty on a
#: critic with LayerNorm (as wgan-gp builds it), and R3GAN's relativistic pairing with R1 + R2 on its backbone
CRITIC_RECIPES = {
    "wgan-gp": {"arch": {"name": "dcgan", "ngf": 4, "ndf": 4}, "loss": "wgan-gp"},
    "rpgan-r1-r2": {"arch": {"name": "r3gan", "widths": [16, 8]}, "loss": {"name": "rpgan", "r1": 1.0, "r2": 1.0}},
}


def _critic_problem(recipe: str = "wgan-gp"):
    """A tiny conditional critic of `recipe`, a batch of 8 and its fakes."""
    from gantoolkit.config import RunConfig, apply_layer
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry

    torch.manual_seed(0)
    config = apply_layer(RunConfig(), {**CRITIC_RECIPES[recipe], "cond": "onehot", "latent_dim": 8}, "test")
    info = DataInfo("t", "image", (1, 8, 8), num_classes=3)
    models = build_models(config, info, get_registry())
    with torch.no_grad():  # fix-up initialisation zeroes each residual block's last convolution: perturb every
        for p in models.critic.parameters():  # weight so that every one has a gradient to compare
            p.add_(0.05 * torch.randn_like(p))
    real = torch.rand(8, 1, 8, 8) * 2 - 1
    labels = torch.arange(8) % 3
    with torch.no_grad():
        fake = models.generator(torch.randn(8, 8), labels)
    return models, real, fake, labels


def _critic_loss(models, real, fake, labels, rank: int) -> torch.Tensor:
    """The trainer's critic objective on one shard: the loss plus its penalty (random draws from `rank`'s RNG)."""
    import functools

    from gantoolkit.components import PenaltyContext

    critic = models.critic
    loss = models.loss.discriminator_loss(critic(real, labels), critic(fake, labels))
    rng = torch.Generator().manual_seed(100 + rank)
    return loss + models.loss.penalty(PenaltyContext(functools.partial(critic, labels=labels), real, fake, rng, 0))


def _averaging_worker(rank: int, store: str, out: str, recipe: str) -> None:
    import torch.distributed as dist

    from gantoolkit.training.optim import Update

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    processes = Processes(rank, rank, 2, dist.group.WORLD)
    models, real, fake, labels = _critic_problem(recipe)
    mine = slice(4 * rank, 4 * rank + 4)
    loss = _critic_loss(models, real[mine], fake[mine], labels[mine], rank)
    Update(torch.optim.SGD(models.critic.parameters(), lr=0.0), None, processes.average_gradients)(loss)
    if rank == 0:
        torch.save({n: p.grad for n, p in models.critic.named_parameters()}, out)
    dist.barrier()  # leave together: a rank that tears gloo down while its peer is still connected can abort
    dist.destroy_process_group()


@pytest.mark.process
@pytest.mark.parametrize("recipe", list(CRITIC_RECIPES))
def test_averaged_gradients_through_the_penalties_equal_one_process_on_the_whole_batch(tmp_path, recipe):
    import torch.multiprocessing as mp

    out = tmp_path / "grads.pt"
    mp.start_processes(_averaging_worker, args=(str(tmp_path / "store"), str(out), recipe), nprocs=2,
                       start_method="spawn")
    averaged = torch.load(out, weights_only=True)
    # one process, the whole batch: every term is a mean over examples (or over real/fake pairs), so the whole
    # batch's objective is the mean of the two halves' (with the same random draws as the two ranks made)
    models, real, fake, labels = _critic_problem(recipe)
    halves = [_critic_loss(models, real[4 * r: 4 * r + 4], fake[4 * r: 4 * r + 4], labels[4 * r: 4 * r + 4], r)
              for r in range(2)]
    (0.5 * (halves[0] + halves[1])).backward()
    for name, p in models.critic.named_parameters():
        assert p.grad.abs().sum() > 0, name
        torch.testing.assert_close(averaged[name], p.grad, rtol=1e-5, atol=1e-7, msg=name)


def _main_first_worker(rank: int, store: str, log: str) -> None:
    import time

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    processes = Processes(rank, rank, 2, dist.group.WORLD)

    def load() -> int:
        with open(log, "a") as f:
            f.write(f"start {rank} {time.time()}\n")
        time.sleep(0.5)  # a download: long enough for a rank that did not wait to start meanwhile
        with open(log, "a") as f:
            f.write(f"end {rank} {time.time()}\n")
        return rank

    assert processes.main_first(load) == rank
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.process
def test_data_is_loaded_by_rank_0_before_the_others_so_downloads_and_decoding_happen_once(tmp_path):
    import torch.multiprocessing as mp

    log = tmp_path / "log"
    mp.start_processes(_main_first_worker, args=(str(tmp_path / "store"), str(log)), nprocs=2, start_method="spawn")
    events = [line.split() for line in log.read_text().splitlines()]
    assert [(what, rank) for what, rank, _ in events] == [("start", "0"), ("end", "0"), ("start", "1"), ("end", "1")]


# -- real 2-process runs ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """Two 2-process runs of the same recipe: 4 steps straight (gantool train --nproc-per-node 2), and 2 steps
    (torchrun) resumed to 4 (gantool train --resume --nproc-per-node 2)."""
    where = tmp_path_factory.mktemp("ddp")
    straight = run([*GANTOOL, "train", *RUN, "--steps", "4", "--nproc-per-node", "2", "--out", "straight"], where)
    assert straight.returncode == 0, straight.stderr
    assert straight.stdout.splitlines() == [f"run: {Path('straight')}"]  # rank 0 alone prints
    split = run([*TORCHRUN, "--nproc-per-node", "2", "-m", "gantoolkit", "train", *RUN, "--steps", "2", "--out",
                 "split"], where)
    assert split.returncode == 0, split.stderr
    resumed = run([*GANTOOL, "train", "--resume", "split", "--steps", "4", "--nproc-per-node", "2"], where)
    assert resumed.returncode == 0, resumed.stderr
    return where


@pytest.mark.process
def test_two_process_run_writes_one_run_that_one_process_can_sample(runs_dir, cli):
    run_dir = runs_dir / "straight"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-00000002.safetensors",
                                                                           "step-00000004.safetensors"]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        "final.png", "step-00000002.png", "step-00000004.png"]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]  # written once, by rank 0
    tensors = load_file(run_dir / "checkpoints" / "step-00000004.safetensors")
    assert "rng.train.rank1" in tensors and not (tensors["rng.train.rank1"] == tensors["rng.train"]).all()
    from gantoolkit.sampling.generator import load_generator

    images, labels = load_generator(run_dir).sample(10, seed=1, class_index=3)
    assert images.shape == (10, 1, 8, 8) and torch.isfinite(images).all() and (labels == 3).all()
    result = cli("sample", run_dir, "--n", "4", "--out", "grid.png")
    assert result.exit_code == 0, result.output


@pytest.mark.process
def test_two_process_run_resumed_with_two_processes_is_bit_identical(runs_dir):
    straight = load_file(runs_dir / "straight" / "checkpoints" / "step-00000004.safetensors")
    resumed = load_file(runs_dir / "split" / "checkpoints" / "step-00000004.safetensors")
    assert straight.keys() == resumed.keys()
    assert [k for k in straight if not torch.equal(straight[k], resumed[k])] == []


#: the modern recipe's parts, tiny: R3GAN's backbone, relativistic pairing with R1 + R2 every 2nd critic step,
#: DiffAugment on reals and fakes, EMA; one-hot conditioning on 8x8 digits
MODERN = ["--arch", "r3gan", "--arch-opt", "widths=16,8", "--loss", "rpgan", "--loss-opt", "r1=1,r2=1",
          "--loss-opt", "lazy_every=2", "--augment", "diffaug", "--n-critic", "2", "--cond", "onehot",
          "--ema", "0.9", "--latent-dim", "16", "--image-size", "8", "--batch-size", "16", "--device", "cpu",
          "--log-every", "1", "--checkpoint-every", "2", "--sample-every", "2"]
#: the other new parts: least squares on stacked digits (3 channels, unlabelled)
LSGAN_STACKED = ["--data", "stacked-digits", "--data-opt", "labels=false", "--cond", "none", "--arch", "dcgan",
                 "--arch-opt", "ngf=8", "--arch-opt", "ndf=8", "--loss", "lsgan", "--image-size", "8",
                 "--batch-size", "16", "--ema", "0.9", "--latent-dim", "16", "--device", "cpu", "--log-every", "1",
                 "--checkpoint-every", "2", "--sample-every", "2"]


@pytest.mark.process
@pytest.mark.parametrize("recipe", [MODERN, LSGAN_STACKED], ids=["r3gan-rpgan-diffaug", "lsgan-stacked-digits"])
def test_the_new_components_on_two_processes_resume_bit_for_bit(tmp_path, recipe):
    """r3gan + rpgan (R1 + R2, lazy) + diffaug + EMA, and lsgan on stacked digits, each on 2 gloo processes: 2 steps
    resumed to 4 on 2 processes equal the straight 4 steps, every tensor of the checkpoint (both ranks' RNG streams
    included)."""
    straight = run([*GANTOOL, "train", *recipe, "--steps", "4", "--nproc-per-node", "2", "--out", "straight"],
                   tmp_path)
    assert straight.returncode == 0, straight.stderr
    split = run([*GANTOOL, "train", *recipe, "--steps", "2", "--nproc-per-node", "2", "--out", "split"], tmp_path)
    assert split.returncode == 0, split.stderr
    resumed = run([*GANTOOL, "train", "--resume", "split", "--steps", "4", "--nproc-per-node", "2"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    a, b = (load_file(tmp_path / r / "checkpoints" / "step-00000004.safetensors") for r in ("straight", "split"))
    assert a.keys() == b.keys() and "rng.train.rank1" in a
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    records = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4] and all(math.isfinite(r["loss_d"]) for r in records)


@pytest.mark.process
def test_a_one_process_resume_of_a_two_process_run(runs_dir, cli):
    result = cli("train", "--resume", runs_dir / "straight", "--steps", "5")
    assert result.exit_code == 0, result.output
    assert (runs_dir / "straight" / "checkpoints" / "step-00000005.safetensors").exists()


@pytest.mark.process
def test_a_failure_on_rank_0_ends_every_process_with_one_error(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    failed = run([*GANTOOL, "train", *RUN, "--steps", "2", "--nproc-per-node", "2", "--out", "taken"], tmp_path)
    assert failed.returncode == 2
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert any("already exists" in line for line in errors)  # rank 0's own error
    assert errors[-1].startswith("error: the distributed run failed: rank 0 with exit code 2")
    assert sum("already exists" in line for line in errors) == 1  # rank 1 stopped quietly


def test_launch_flag_errors_are_one_line(cli):
    result = cli("train", "--nnodes", "2")
    assert result.exit_code == 2 and "need --nproc-per-node" in result.stderr
    result = cli("train", "--nproc-per-node", "0")
    assert result.exit_code == 2 and "--nproc-per-node must be at least 1" in result.stderr


def test_a_batch_that_does_not_split_is_refused_before_launching(cli):
    result = cli("train", "--batch-size", "15", "--nproc-per-node", "2")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: --batch-size 15 does not split evenly over 2 processes (use a multiple of "
                                     "2 (--batch-size is the batch of all processes together))")


@pytest.mark.process
@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_two_gpus_with_nccl(tmp_path):
    gpu_run = [a if a != "cpu" else "cuda" for a in RUN]
    result = run([*GANTOOL, "train", *gpu_run, "--amp", "--steps", "4", "--nproc-per-node", "2", "--out", "gpu"],
                 tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "gpu" / "checkpoints" / "step-00000004.safetensors").exists()
