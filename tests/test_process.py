"""`gantool` as a real process: kill -9 mid-run, Ctrl-C and SIGTERM, shell completion, and CUDA when there is one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_DCGAN

pytestmark = pytest.mark.process  # every test here starts processes

GANTOOL = [sys.executable, "-c", "from gantoolkit.cli import main; main()"]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "GANTOOL_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1", **extra}


def start_training(out: Path, steps: int, every: int = 2) -> subprocess.Popen:
    args = ["train", *TINY_DCGAN, "--image-size", "8", "--steps", str(steps), "--checkpoint-every", str(every),
            "--log-every", "1", "--sample-every", "1000", "--keep-checkpoints", "2", "--out", str(out),
            "--lr-decay", "0"]  # constant rates: the killed run is resumed to a smaller --steps than it started with
    return subprocess.Popen([*GANTOOL, *args], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_step(run: Path, step: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    metrics = run / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.exists():
            lines = metrics.read_text().splitlines()
            try:
                if lines and json.loads(lines[-1])["step"] >= step:
                    return
            except ValueError:  # a line being written
                pass
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"no step {step} within {timeout}s")


def resume_training(run: Path, steps: int) -> subprocess.Popen:
    return subprocess.Popen([*GANTOOL, "train", "--resume", str(run), "--steps", str(steps)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def same_tensors(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_a_checkpoint_is_written_after_the_old_ones_it_replaces_are_gone(cli, tmp_path, monkeypatch):
    """With --keep-checkpoints K, at most K-1 older checkpoints exist while one is written, so a run killed between
    writing and pruning never holds more than K (a resume keeps whatever a run holds)."""
    from gantoolkit.files import runs
    from gantoolkit.training import trainer

    held: list[int] = []
    real = trainer.write_checkpoint
    monkeypatch.setattr(trainer, "write_checkpoint", lambda path, *a, **k: (
        held.append(len(runs.list_checkpoints(path.parent.parent))), real(path, *a, **k))[1])
    result = cli("train", *TINY_DCGAN, "--image-size", "8", "--steps", "5", "--checkpoint-every", "1",
                 "--keep-checkpoints", "2", "--out", "run")
    assert result.exit_code == 0, result.output
    assert held == [0, 1, 1, 1, 1]
    assert [step for step, _ in runs.list_checkpoints(tmp_path / "run")] == [4, 5]


def test_kill_9_at_random_moments_loses_nothing(tmp_path):
    """Killed twice at random moments while checkpointing every step (so often in the middle of a write), then
    resumed: the newest checkpoint is always complete, and the finished run is bit for bit the uninterrupted one."""
    from gantoolkit.files.checkpoint import load_checkpoint
    from gantoolkit.files.runs import resolve_checkpoint

    run = tmp_path / "run"
    proc, reached = start_training(run, steps=100_000, every=1), 0
    for kill in range(2):
        wait_for_step(run, reached + 3, proc)
        time.sleep(random.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        ckpt = load_checkpoint(resolve_checkpoint(run))  # the newest checkpoint is complete
        assert ckpt.step >= reached + 1
        reached = ckpt.step
        if kill == 0:
            proc = resume_training(run, 100_000)
    total = reached + 2
    resumed = subprocess.run([*GANTOOL, "train", "--resume", str(run), "--steps", str(total)],
                             env=env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    straight = start_training(tmp_path / "straight", steps=total, every=1)
    assert straight.wait(timeout=600) == 0, straight.stderr.read()
    name = f"step-{total:08d}.safetensors"
    assert same_tensors(run / "checkpoints" / name, tmp_path / "straight" / "checkpoints" / name)
    # one log line per step, as if nothing had happened, and no half-written file left behind
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, total + 1))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"step-{s:08d}.safetensors"
                                                                        for s in (total - 1, total)]


@pytest.mark.parametrize("sig, word", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")],
                         ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_save_a_checkpoint_and_exit_cleanly(tmp_path, sig, word):
    run = tmp_path / "run"
    proc = start_training(run, steps=100_000, every=1000)
    wait_for_step(run, 2, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {word} at step") and f"--resume {run}" in last
    from gantoolkit.files.checkpoint import load_checkpoint
    from gantoolkit.files.runs import resolve_checkpoint

    step = int(last.split(" at step ")[1].split(";")[0])
    saved = load_checkpoint(resolve_checkpoint(run))
    assert saved.step == step >= 2 and str(saved.path) in last  # the step it names is the one it saved
    resumed = subprocess.run([*GANTOOL, "train", "--resume", str(run), "--steps", str(step + 1)],
                             env=env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr


def test_shell_completion_offers_registered_names():
    completion = subprocess.run(
        GANTOOL, env=env(_GANTOOL_COMPLETE="complete_bash", COMP_WORDS="gantool train --loss wg", COMP_CWORD="3"),
        capture_output=True, text=True, timeout=60,
    )
    assert completion.stdout.split() == ["wgan", "wgan-gp"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_with_mixed_precision(cli):
    result = cli("train", *TINY_DCGAN, "--loss", "wgan-gp", "--cond", "onehot", "--device", "cuda", "--amp",
                 "--steps", "4", "--out", "gpu")
    assert result.exit_code == 0, result.output
    assert cli("sample", "gpu", "--device", "cuda", "--n", "4", "--out", "g.npz").exit_code == 0
