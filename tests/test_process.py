"""`gantool` as a real process: kill -9 mid-run, Ctrl-C, shell completion, and CUDA when there is one."""

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

GANTOOL = [sys.executable, "-c", "from gantoolkit.cli import main; main()"]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "GANTOOL_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1", **extra}


def start_training(out: Path, steps: int, every: int = 2) -> subprocess.Popen:
    args = ["train", *TINY_DCGAN, "--image-size", "8", "--steps", str(steps), "--checkpoint-every", str(every),
            "--log-every", "1", "--sample-every", "1000", "--keep-checkpoints", "2", "--out", str(out)]
    return subprocess.Popen([*GANTOOL, *args], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_step(run: Path, step: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    metrics = run / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.exists():
            lines = metrics.read_text().splitlines()
            if lines and json.loads(lines[-1])["step"] >= step:
                return
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"no step {step} within {timeout}s")


def test_kill_9_at_a_random_moment_leaves_a_resumable_run(tmp_path):
    run = tmp_path / "run"
    proc = start_training(run, steps=100_000)
    wait_for_step(run, 3, proc)
    time.sleep(random.uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    from gantoolkit.checkpoint import load_checkpoint
    from gantoolkit.runs import resolve_checkpoint

    ckpt = load_checkpoint(resolve_checkpoint(run))  # the newest checkpoint is complete
    assert ckpt.step >= 2 and ckpt.step % 2 == 0
    resumed = subprocess.run([*GANTOOL, "train", "--resume", str(run), "--steps", str(ckpt.step + 2)],
                             env=env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(resolve_checkpoint(run)).step == ckpt.step + 2


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    run = tmp_path / "run"
    proc = start_training(run, steps=100_000, every=1000)
    wait_for_step(run, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: interrupted at step") and "--resume" in last
    from gantoolkit.checkpoint import load_checkpoint
    from gantoolkit.runs import resolve_checkpoint

    assert load_checkpoint(resolve_checkpoint(run)).step >= 2


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
