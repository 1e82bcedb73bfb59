"""The first run: the data's recommended settings (flags win), the default preset, progress without a terminal,
the final grid and the next commands."""

from __future__ import annotations

import json
import os
import shlex
import types

import numpy as np
import pytest
from PIL import Image

import gantoolkit
from gantoolkit.builtin.datasets.digits import SCHEDULES
from gantoolkit.files.runs import final_sample_path
from gantoolkit.recommend import compose
from gantoolkit.training import progress
from tests.conftest import TINY_DCGAN

pytestmark = pytest.mark.usefixtures("one_thread")


def composed(layer: dict, opts: dict | None = None):
    return compose([(layer, "command line")], opts or {})


def test_digits_recommend_their_size_and_schedule_for_each_loss():
    gp, advice = composed({"arch": "dcgan", "loss": "wgan-gp", "cond": "onehot"})
    bce, _ = composed({"arch": "dcgan", "loss": "bce", "cond": "onehot"})
    assert gp.image_size == bce.image_size == 16 and bce.arch.options["ngf"] == 32
    assert gp.arch.options["ngf"] == gp.arch.options["ndf"] == 32
    assert advice["image_size"] == 16 and advice["arch.ngf"] == 32
    for loss, schedule in SCHEDULES.items():  # each loss has its own schedule
        config, _ = composed({"arch": "dcgan", "loss": loss, "cond": "onehot"})
        assert all(getattr(config, k) == v for k, v in schedule.items() if k != "loss")
        assert all(config.loss.options[k] == v for k, v in schedule.get("loss", {}).items() if k != "name")
    assert gp.loss.options["lazy_every"] == 4 and gp.n_critic == 2


def test_digits_recommend_the_matching_term_for_onehot_only():
    config, advice = composed({"arch": "dcgan", "loss": "wgan-gp", "cond": "onehot"})
    assert config.cond.options == {"match": 1.0} and advice["cond.match"] == 1.0
    off, advice = composed({"arch": "dcgan", "loss": "wgan-gp", "cond": "onehot"}, {"cond": ["match=0"]})
    assert off.cond.options == {"match": "0"} and "cond.match" not in advice  # the flag wins
    for cond in ("none", "embed", "acgan"):
        other, advice = composed({"arch": "dcgan", "loss": "bce", "cond": cond})
        assert other.cond.options == {} and "cond.match" not in advice
    stacked, _ = composed({"data": "stacked-digits", "arch": "dcgan", "loss": "bce", "cond": "onehot"})
    assert stacked.cond.options == {}  # other data keeps the scheme's own default (no term)


def test_a_loss_the_digits_do_not_know_gets_only_the_size_and_widths():
    from gantoolkit.plugins import PluginHost, PluginRecord
    from gantoolkit.registry import Registry, use_registry

    def register_losses(register):
        register("hinge-test", "gantoolkit.builtin.losses.wasserstein:WGAN", summary="a loss the digits do not know")

    host = PluginHost()
    host.load_builtins()
    module = types.ModuleType("hinge_plugin")
    module.register_losses = gantoolkit.hookimpl(register_losses)
    host.register_module(module, PluginRecord("hinge_plugin", "dist-hinge", "1.0", "hinge_plugin"))
    with use_registry(Registry(host)):
        config, advice = composed({"arch": "dcgan", "loss": "hinge-test"})
    assert set(advice) == {"image_size", "arch.ngf", "arch.ndf"} and config.steps == 1000 and config.ema == 0


def test_flags_override_the_recommendation():
    config, advice = composed({"arch": "dcgan", "loss": "wgan-gp", "image_size": 32, "n_critic": 5, "steps": 7},
                              {"arch": ["ngf=64"], "loss": ["lazy_every=1"]})
    assert (config.image_size, config.n_critic, config.steps) == (32, 5, 7)
    assert config.arch.options["ngf"] == "64" and config.arch.options["ndf"] == 32  # flags are typed when built
    assert config.loss.options["lazy_every"] == "1"
    assert "image_size" not in advice and "arch.ngf" not in advice and "arch.ndf" in advice


def test_other_data_and_other_parts_keep_their_own_defaults():
    fake, advice = composed({"data": "fake:1x32x32", "arch": "dcgan", "loss": "wgan-gp"})
    assert fake.image_size is None and fake.arch.options == {} and fake.steps == 1000 and advice == {}
    mlp, advice = composed({"arch": "mlp", "loss": "wgan-gp"})
    assert mlp.arch.options == {}  # dcgan's widths are not an mlp's options
    assert "arch.ngf" not in advice and mlp.image_size == 16


def test_pytorch_examples_shape_at_64_is_untouched():
    config, _ = composed({"data": "fake:3x64x64", "image_size": 64, "arch": "dcgan", "loss": "bce"})
    assert config.arch.options == {} and config.n_critic is None and config.lr is None


def test_train_with_no_part_named_runs_the_default_preset_and_says_so(cli, tmp_path):
    result = cli("train", "--steps", "1", "--out", "run")
    assert result.exit_code == 0, result.output
    assert "the 'default' preset" in result.stderr and "digits recommends" in result.stderr
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == 1
    info = json.loads(cli("info", "run", "--json").stdout)
    assert (info["arch"]["name"], info["loss"]["name"], info["cond"]["name"]) == ("dcgan", "wgan-gp", "onehot")
    assert info["data"]["shape"] == [1, 16, 16]
    assert info["arch"]["options"] == {"ngf": 32, "ndf": 32, "critic_norm": "auto", "upsample": "transpose"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_progress_lines_have_a_plan_an_eta_and_come_early(tmp_path, monkeypatch, capsys):
    clock = FakeClock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    monitor = progress.Monitor(tmp_path / "metrics.jsonl", total=1000, start=0)
    assert not monitor.live  # pytest's stderr is not a terminal
    with monitor:
        for step in range(1, 1001):
            clock.now += 0.5  # 2 steps a second
            monitor.advance(step)
            if step % 100 == 0:
                monitor.log(step, {"loss_d": -float(step), "loss_g": 1.0})
    lines = capsys.readouterr().err.splitlines()
    plan = [line for line in lines if line.startswith("plan:")]
    assert len(plan) == 1 and "1000 steps" in plan[0] and "2.00 it/s" in plan[0] and "8 min" in plan[0]
    steps = [line for line in lines if line.startswith("step ")]
    first = int(steps[0].split()[1].split("/")[0])
    assert first * 0.5 <= 10  # the first line within 10 seconds
    assert all("ETA" in line for line in steps[:-1])
    assert steps[-1].startswith("step 1000/1000") and "loss_d -1000" in steps[-1]
    assert 10 <= len(steps) <= 60  # neither silent nor a line per log
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 10


def test_a_run_ends_with_a_final_grid_and_commands_that_work(cli, tmp_path):
    result = cli("train", *TINY_DCGAN, "--loss", "bce", "--cond", "onehot", "--image-size", "8", "--steps", "3",
                 "--out", "run")
    assert result.exit_code == 0, result.output
    final = np.asarray(Image.open(final_sample_path(tmp_path / "run")))
    assert final.shape[:2] == (10 * 8 + 11 * 2, 10 * 8 + 11 * 2)  # ten rows (one per class) of ten
    rows = [final[2 + 10 * r: 10 + 10 * r, 2:] for r in range(10)]
    assert not all((rows[0] == row).all() for row in rows[1:])
    assert f"samples: {final_sample_path(tmp_path / 'run').relative_to(tmp_path)}" in result.stderr
    hints = result.stderr.split("next:\n", 1)[1].splitlines()
    commands = [shlex.split(line.strip()) for line in hints if line.strip().startswith("gantool ")]
    assert [c[1] for c in commands] == ["sample", "evaluate", "demo", "report"]
    assert all(c[2] == "run" for c in commands)
    sample = cli(*commands[0][1:])
    assert sample.exit_code == 0, sample.output
    assert Image.open(tmp_path / commands[0][-1]).size[0] > 8
    report = cli(*commands[3][1:])
    assert report.exit_code == 0, report.output
    assert (tmp_path / commands[3][-1]).read_bytes().startswith(b"<!DOCTYPE html>")


def test_an_unconditional_run_gets_a_ten_by_ten_grid(cli, tmp_path):
    result = cli("train", *TINY_DCGAN, "--loss", "bce", "--cond", "none", "--image-size", "8", "--steps", "2",
                 "--out", "run")
    assert result.exit_code == 0, result.output
    assert Image.open(final_sample_path(tmp_path / "run")).size == (102, 102)
    assert "--out samples.png" in result.stderr and "--class" not in result.stderr


def test_waiting_threads_sleep_unless_the_environment_says_otherwise(monkeypatch):
    from gantoolkit.cli.app import sleeping_waits

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    sleeping_waits()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    sleeping_waits()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    sleeping_waits()
    assert "OMP_WAIT_POLICY" not in os.environ


@pytest.mark.parametrize("cpus, environment, expected", [
    (2, {}, 1),                            # a 2-CPU machine: one thread (benchmarks/threads.py)
    (1, {}, 1),
    (8, {}, "torch's"),                    # more CPUs: torch's own count
    (2, {"OMP_NUM_THREADS": "2"}, "torch's"),  # the environment's choice is kept
])
def test_without_threads_a_small_machine_trains_on_one_thread(monkeypatch, cpus, environment, expected):
    import torch

    from gantoolkit import device

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # stands for torch's own choice
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(device, "usable_cpus", lambda: cpus)
        assert device.set_threads(None) == (3 if expected == "torch's" else expected)
        assert device.set_threads(2) == 2  # --threads always wins
    finally:
        torch.set_num_threads(before)


def test_threads_flag_sets_the_training_threads_and_may_change_on_resume(cli, tmp_path):
    import torch

    args = ["train", *TINY_DCGAN, "--loss", "bce", "--image-size", "8", "--out", "run"]
    result = cli(*args, "--steps", "2", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "(1 thread)" in result.stderr and torch.get_num_threads() == 1
    resumed = cli("train", "--resume", "run", "--steps", "3", "--threads", "2")
    assert resumed.exit_code == 0, resumed.output
    assert "(2 threads)" in resumed.stderr
    bad = cli(*args[:-1], "other", "--threads", "0")
    assert bad.exit_code == 2 and "--threads must be between 1 and 1024" in bad.stderr
    assert not (tmp_path / "other").exists()
