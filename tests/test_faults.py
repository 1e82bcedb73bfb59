"""Faults while training: NaN or infinite losses (`--on-nan stop|rollback`), weights gone bad, a full disk.

A NaN is forced the way a user could force one: with an absurd `--lr`, or with a small loss plugin installed as a
real distribution (a dist-info folder with an entry point in the `gantoolkit` group) that makes the critic's loss NaN
at a chosen step. Kill -9 and Ctrl-C are in tests/test_process.py.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from gantoolkit.files.checkpoint import load_checkpoint
from gantoolkit.files.runs import list_checkpoints
from tests.conftest import TINY_DCGAN

NAN_PLUGIN = "gantool_nan_loss"
NAN_MODULE = '''
"""bce whose critic loss turns NaN (and, through its gradient, the critic's weights) at a chosen step."""
import torch

import gantoolkit
from gantoolkit.builtin.losses.bce import BCE


class NaNAt(BCE):
    """`at_step`: NaN at this (1-based) step, every time the run passes it; `at_call`: NaN at this critic step
    of this process only (so it does not come back after a rollback or a resume)."""

    def __init__(self, at_step: int = 0, at_call: int = 0) -> None:
        super().__init__()
        self.at_step, self.at_call, self.calls = at_step, at_call, 0

    def penalty(self, ctx):
        self.calls += 1
        if ctx.critic_step + 1 == self.at_step or self.calls == self.at_call:
            return ctx.critic(ctx.real).mean() * float("nan")
        return None


@gantoolkit.hookimpl
def register_losses(register):
    register("nan-at", NaNAt, summary="bce that turns NaN at a chosen step (fault injection)")
'''


pytestmark = pytest.mark.usefixtures("one_thread")


def install_nan_plugin(site: Path) -> Path:
    """The plugin as an installed distribution: its module and a dist-info folder declaring the entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{NAN_PLUGIN}.py").write_text(textwrap.dedent(NAN_MODULE))
    info = site / "gantool_nan_loss-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gantool-nan-loss\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[gantoolkit]\nnan = {NAN_PLUGIN}\n")
    return site


@pytest.fixture
def nan_loss(tmp_path, monkeypatch):
    """`--loss nan-at` available in-process, through the plugin's entry point."""
    site = install_nan_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("GANTOOL_DISABLE_PLUGIN_AUTOLOAD")
    yield
    sys.modules.pop(NAN_PLUGIN, None)


def train_args(*extra: str) -> list[str]:
    return ["train", *TINY_DCGAN, "--image-size", "8", "--log-every", "1", "--checkpoint-every", "2",
            "--sample-every", "2", *extra]


def one_error_line(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and result.stderr.strip().endswith(lines[0]), result.stderr
    return lines[0]


def steps_logged(run: Path) -> list:
    return [json.loads(line).get("event", json.loads(line)["step"])
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def all_finite(path: Path) -> bool:
    tensors = load_checkpoint(path).tensors
    return all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- NaN: stop --------------------------------------------------------------------------------------------------


@pytest.mark.process
def test_forced_nan_in_a_real_process_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path):
    site = install_nan_plugin(tmp_path / "site")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GANTOOL_")}
    environ.update(PYTHONPATH=os.pathsep.join(filter(None, [str(site), environ.get("PYTHONPATH")])),
                   OMP_NUM_THREADS="1")

    def gantool(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gantoolkit", *args], cwd=tmp_path, env=environ,
                              capture_output=True, text=True, timeout=600)

    failed = gantool(*train_args("--loss", "nan-at", "--loss-opt", "at_call=5", "--steps", "8", "--out", "run"))
    assert failed.returncode == 3, failed.stderr
    assert "Traceback" not in failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last == ("error: a loss became NaN or infinite at step 5; training stopped and the last good checkpoint "
                    "run/checkpoints/step-00000004.safetensors is kept (resume with a lower learning rate: gantool "
                    "train --resume run --lr 2e-05; or try another loss, or pass --on-nan rollback)")
    run = tmp_path / "run"
    # nothing after step 4 was written: no checkpoint, no sample grid, no log line
    assert names(run / "checkpoints") == ["step-00000002.safetensors", "step-00000004.safetensors"]
    assert names(run / "samples") == ["step-00000002.png", "step-00000004.png"]
    assert steps_logged(run) == [1, 2, 3, 4]
    assert all_finite(run / "checkpoints" / "step-00000004.safetensors")
    # the hint's command works: the kept checkpoint resumes at the lower rate (in a new process the plugin's NaN
    # comes at its 5th call: step 9), and later checkpoints keep that rate
    resumed = gantool("train", "--resume", "run", "--lr", "2e-05", "--steps", "6")
    assert resumed.returncode == 0, resumed.stderr
    ckpt = load_checkpoint(list_checkpoints(run)[-1][1])
    assert ckpt.step == 6 and ckpt.config.lr == 2e-05
    groups = [g for part in ("generator", "critic") for g in ckpt.json("optim")[part]["param_groups"]]
    assert [g["lr"] for g in groups] == [2e-05] * 2


def test_nan_step_is_named_correctly_after_a_resume(cli, nan_loss):
    first = cli(*train_args("--loss", "nan-at", "--loss-opt", "at_step=7", "--steps", "4", "--out", "run"))
    assert first.exit_code == 0, first.output
    result = cli("train", "--resume", "run", "--steps", "8")
    assert result.exit_code == 3
    assert "a loss became NaN or infinite at step 7;" in one_error_line(result)
    assert names(Path("run/checkpoints"))[-1] == "step-00000006.safetensors"


def test_weights_gone_bad_are_never_checkpointed(tmp_path):
    from gantoolkit.config import RunConfig, apply_layer
    from gantoolkit.data.loading import load_dataset
    from gantoolkit.errors import TrainingError
    from gantoolkit.files.runs import create_run_dir
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry
    from gantoolkit.training.trainer import Trainer

    config = apply_layer(RunConfig(), {"arch": {"name": "mlp", "hidden_dim": 8}, "data": "toy:ring",
                                       "latent_dim": 4, "batch_size": 8}, "test")
    dataset = load_dataset(config, get_registry())
    trainer = Trainer(build_models(config, dataset.info, get_registry()), dataset,
                      create_run_dir(tmp_path / "run", "x"), torch.device("cpu"))
    trainer.save_checkpoint()
    with torch.no_grad():
        next(trainer.D.parameters())[0] = math.inf
    with pytest.raises(TrainingError, match="a weight became NaN or infinite at step 0"):
        trainer.save_checkpoint()
    assert names(tmp_path / "run" / "checkpoints") == ["step-00000000.safetensors"]


def test_the_optimizer_state_and_the_ema_gone_bad_are_never_checkpointed(tmp_path):
    """Adam's second moments overflow to inf before any weight does (the update then is 0/inf = 0)."""
    from gantoolkit.errors import TrainingError

    trainer = tiny_trainer(tmp_path, ema=0.9)
    trainer.train_step()
    trainer.save_checkpoint()
    next(iter(trainer.opt_d.state.values()))["exp_avg_sq"].fill_(math.inf)
    with pytest.raises(TrainingError, match="the optimizer state became NaN or infinite at step 0"):
        trainer.save_checkpoint()
    next(iter(trainer.opt_d.state.values()))["exp_avg_sq"].fill_(0.0)
    with torch.no_grad():
        next(trainer.ema.module.parameters()).fill_(math.nan)
    with pytest.raises(TrainingError, match="the EMA generator became NaN or infinite at step 0"):
        trainer.save_checkpoint()
    assert names(tmp_path / "run" / "checkpoints") == ["step-00000000.safetensors"]


def tiny_trainer(tmp_path: Path, **settings):
    from gantoolkit.config import RunConfig, apply_layer
    from gantoolkit.data.loading import load_dataset
    from gantoolkit.files.runs import create_run_dir
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry
    from gantoolkit.training.trainer import Trainer

    config = apply_layer(RunConfig(), {"arch": {"name": "mlp", "hidden_dim": 8}, "data": "toy:ring",
                                       "latent_dim": 4, "batch_size": 8, **settings}, "test")
    dataset = load_dataset(config, get_registry())
    return Trainer(build_models(config, dataset.info, get_registry()), dataset,
                   create_run_dir(tmp_path / "run", "x"), torch.device("cpu"))


# -- losses that explode while staying finite ---------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["stop", "rollback"])
def test_a_run_whose_losses_explode_is_not_done(cli, policy):
    """With --lr 1e6 the losses reach 1e13-1e33 and stay finite: the run stops as for a NaN (exit 3), with either
    policy (rollback halves the rates three times and gives up), and nothing is written after the bad step."""
    result = cli(*train_args("--lr", "1e6", "--log-every", "10", "--checkpoint-every", "20", "--sample-every", "20",
                             "--steps", "60", "--on-nan", policy, "--out", "run"))
    assert result.exit_code == 3, result.output
    line = one_error_line(result)
    assert "exploded to" in line and "(beyond 1e+08" in line and "at step 10" in line and "done" not in result.stderr
    assert "no checkpoint was written" in line
    assert names(Path("run/checkpoints")) == [] and names(Path("run/samples")) == []
    if policy == "rollback":
        assert "again after 3 rollbacks" in line
        assert result.stderr.count("warning: loss_") == 3


def test_a_loss_far_beyond_its_own_history_counts_as_diverged():
    from gantoolkit.training.recovery import LossGuard

    guard = LossGuard()
    for step in range(1, 6):
        assert guard.check(step * 10, {"loss_d": 1.3, "loss_g": -0.7, "amp_skipped": 5e9}) is None
    assert guard.check(60, {"loss_d": 9e3, "loss_g": 0.5}) is None  # within 10,000 × (1 + 1.3)
    found = guard.check(70, {"loss_d": 1.0, "loss_g": -3e4})
    assert found is not None and found[0] == "loss_g" and "exploded to -3e+04" in found[1]
    assert guard.check(70, {"loss_d": 1.0, "loss_g": 1e9})[1].startswith("exploded to 1e+09")
    guard.forget_after(30)  # a rollback to step 30 drops what was logged after it
    assert [s for s, _ in guard.history["loss_d"]] == [10, 20, 30]


def test_an_exploded_stretch_between_log_lines_is_never_checkpointed(tmp_path):
    """The losses since the last log line are read before a checkpoint too."""
    from gantoolkit.errors import TrainingError

    trainer = tiny_trainer(tmp_path)
    trainer._track({"loss_d": torch.tensor(3e12), "loss_g": torch.tensor(1.0)})
    with pytest.raises(TrainingError, match=r"loss_d exploded to 3e\+12"):
        trainer.save_checkpoint()
    assert names(tmp_path / "run" / "checkpoints") == []


def test_a_checkpoint_holding_infinite_optimizer_state_is_not_resumed(cli, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    result = cli(*train_args("--steps", "4", "--out", "run"))
    assert result.exit_code == 0, result.output
    newest = Path("run/checkpoints/step-00000004.safetensors")
    with safe_open(str(newest), framework="pt") as fh:
        meta = dict(fh.metadata())
    tensors = load_file(str(newest))
    key = next(k for k in sorted(tensors) if k.startswith("optim.critic.state.") and k.endswith("exp_avg_sq"))
    tensors[key] = torch.full_like(tensors[key], math.inf)
    save_file(tensors, str(newest), metadata=meta)
    before = sorted(p.name for p in Path("run").rglob("*"))
    metrics = Path("run/metrics.jsonl").read_bytes()
    refused = cli("train", "--resume", "run", "--steps", "8")
    assert refused.exit_code == 2
    assert one_error_line(refused) == (
        f"error: 'run/checkpoints/step-00000004.safetensors' holds NaN or infinite values ({key}); a diverged run "
        "is not resumed (move it out of run/checkpoints to resume from step 2)")
    assert sorted(p.name for p in Path("run").rglob("*")) == before
    assert Path("run/metrics.jsonl").read_bytes() == metrics


# -- NaN: rollback ----------------------------------------------------------------------------------------------


def test_rollback_restores_the_last_good_state_halves_the_rates_and_skips_the_bad_batches(cli, nan_loss):
    result = cli(*train_args("--loss", "nan-at", "--loss-opt", "at_call=5", "--on-nan", "rollback", "--steps", "8",
                             "--out", "run"))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: a loss became NaN or infinite at step 5; rolled back to step 4 (checkpoint "
        "run/checkpoints/step-00000004.safetensors), halved the learning rates (G 0.0002 -> 0.0001, D 0.0002 -> "
        "0.0001) and skipped the batches since then (rollback 1 of 3)"]
    run = Path("run")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 4, 5, 6, 7, 8]  # the discarded step 5 is gone
    assert records[4] == {"step": 4, "event": "rollback", "bad_step": 5, "rollback": 1, "lr_g": 1e-4, "lr_d": 1e-4}
    assert all(math.isfinite(r["loss_d"]) for r in records if "loss_d" in r)
    final = load_checkpoint(run / "checkpoints" / "step-00000008.safetensors")
    assert all_finite(final.path)
    optim = final.json("optim")
    assert optim["generator"]["param_groups"][0]["lr"] == optim["critic"]["param_groups"][0]["lr"] == 1e-4
    # 5 batches before the rollback and 4 after: the batch of the bad step is not drawn again
    assert final.json("data_state") == {"epoch": 0, "position": 9 * 16}
    # the lowered rates are part of the run: a resume keeps them
    assert cli("train", "--resume", "run", "--steps", "10").exit_code == 0
    resumed = load_checkpoint(run / "checkpoints" / "step-00000010.safetensors")
    assert resumed.json("optim")["generator"]["param_groups"][0]["lr"] == 1e-4


def test_rollback_halves_the_rates_that_lr_decay_goes_on_scaling(cli, nan_loss):
    result = cli(*train_args("--loss", "nan-at", "--loss-opt", "at_call=5", "--on-nan", "rollback", "--steps", "8",
                             "--lr-decay", "1", "--out", "run"))
    assert result.exit_code == 0, result.output
    optim = load_checkpoint(Path("run/checkpoints/step-00000008.safetensors")).json("optim")
    # base 2e-4 halved by the rollback to 1e-4; the last step (index 7 of 8) runs at 1/8 of it
    assert [optim[net]["param_groups"][0]["lr"] for net in ("generator", "critic")] == pytest.approx([1.25e-5] * 2)


def test_rollback_gives_up_when_the_nan_keeps_coming_back(cli, nan_loss):
    result = cli(*train_args("--loss", "nan-at", "--loss-opt", "at_step=3", "--on-nan", "rollback", "--steps", "8",
                             "--out", "run"))
    assert result.exit_code == 3
    assert one_error_line(result) == (
        "error: a loss became NaN or infinite at step 3 again after 3 rollbacks with lower learning rates; training "
        "stopped and the last good checkpoint run/checkpoints/step-00000002.safetensors is kept (lower --lr "
        "further, or try another loss)")
    assert sum(line.startswith("warning: ") for line in result.stderr.splitlines()) == 3
    assert names(Path("run/checkpoints")) == ["step-00000002.safetensors"]
    assert steps_logged(Path("run")) == [1, 2, "rollback", "rollback", "rollback"]


def test_absurd_learning_rate_with_rollback_before_any_checkpoint(cli):
    result = cli(*train_args("--lr", "1e30", "--on-nan", "rollback", "--steps", "4", "--out", "run"))
    assert result.exit_code == 3
    assert "again after 3 rollbacks" in one_error_line(result) and "no checkpoint was written" in result.stderr
    assert names(Path("run/checkpoints")) == [] and names(Path("run/samples")) == []


# -- a full disk ------------------------------------------------------------------------------------------------


class FullDisk(io.FileIO):
    """A file on a disk that fills up halfway through the write."""

    def write(self, data) -> int:
        super().write(bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(cli, monkeypatch):
    import gantoolkit.files.outputs

    full = [True]
    real_fdopen = os.fdopen

    def disk(fd, mode="r", *args, **kwargs):  # atomic_write opens its temporary file by descriptor
        if full[0] and "step-00000004" in os.readlink(f"/proc/self/fd/{fd}") and "w" in mode:
            return FullDisk(fd, "wb")
        return real_fdopen(fd, mode, *args, **kwargs)

    monkeypatch.setattr(gantoolkit.files.outputs.os, "fdopen", disk)
    result = cli(*train_args("--steps", "6", "--sample-every", "100", "--out", "run"))
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "error: could not write checkpoint 'run/checkpoints/step-00000004.safetensors': No space left on device "
        "(free some disk space; the previous checkpoint is intact)")
    checkpoints = Path("run/checkpoints")
    assert os.listdir(checkpoints) == ["step-00000002.safetensors"]  # no temporary file left behind
    assert load_checkpoint(checkpoints / "step-00000002.safetensors").step == 2
    full[0] = False  # space freed: the run goes on from the checkpoint that was kept
    resumed = cli("train", "--resume", "run", "--steps", "6")
    assert resumed.exit_code == 0, resumed.output
    assert names(checkpoints) == [f"step-0000000{s}.safetensors" for s in (2, 4, 6)]
