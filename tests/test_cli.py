"""The `gantool` CLI through Typer's CliRunner: train -> checkpoint -> sample -> info -> export -> resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file

from gantoolkit.files.runs import list_checkpoints
from tests.conftest import TINY_DCGAN


def tensors_equal(a: Path, b: Path, prefix: str = "") -> bool:
    x, y = load_file(str(a)), load_file(str(b))
    keys = [k for k in x if k.startswith(prefix)]
    return bool(keys) and x.keys() == y.keys() and all((x[k] == y[k]).all() for k in keys)


def train_args(*extra: str) -> list[str]:
    return ["train", *TINY_DCGAN, "--image-size", "8", "--log-every", "2", *extra]


def test_train_writes_a_complete_run_directory(tiny_run):
    assert sorted(p.name for p in (tiny_run / "checkpoints").iterdir()) == [
        "step-00000003.safetensors", "step-00000006.safetensors"]
    assert sorted(p.name for p in (tiny_run / "samples").iterdir()) == [
        "final.png", "step-00000003.png", "step-00000006.png"]
    grid = Image.open(tiny_run / "samples" / "step-00000006.png")
    assert grid.width > grid.height  # one column per class: 10 columns, 7 rows
    final = np.asarray(Image.open(tiny_run / "samples" / "final.png"))
    assert final.shape[:2] == (10 * 8 + 11 * 2, 10 * 8 + 11 * 2)  # 10×10 images of 8 px, 2 px apart
    lines = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [3, 6]
    assert {"loss_d", "loss_g", "it_per_s"} <= set(lines[0])


def test_sample_grid_npz_folder_and_class(cli, tiny_run):
    assert cli("sample", tiny_run, "--n", "20", "--out", "grid.png").exit_code == 0
    assert Image.open("grid.png").size[0] > 8
    result = cli("sample", tiny_run, "--n", "30", "--out", "even.npz")
    assert result.exit_code == 0, result.output
    arrays = np.load("even.npz")
    assert arrays["images"].dtype == np.uint8 and arrays["images"].shape == (30, 1, 8, 8)
    assert arrays["labels"].dtype == np.int64 and np.bincount(arrays["labels"]).tolist() == [3] * 10
    assert cli("sample", tiny_run, "--n", "5", "--class", "7", "--out", "sevens.npz").exit_code == 0
    assert set(np.load("sevens.npz")["labels"]) == {7}
    assert cli("sample", tiny_run, "--n", "3", "--class", "2", "--out", "pngs").exit_code == 0
    assert sorted(os.listdir("pngs")) == ["000000-2.png", "000001-2.png", "000002-2.png"]


def test_same_seed_same_samples_different_seed_different(cli, tiny_run):
    for name, seed in (("a.npz", 1), ("b.npz", 1), ("c.npz", 2)):
        assert cli("sample", tiny_run, "--n", "8", "--seed", seed, "--out", name).exit_code == 0
    a, b, c = (np.load(n)["images"] for n in ("a.npz", "b.npz", "c.npz"))
    assert (a == b).all() and not (a == c).all()


def test_truncation_keeps_latents_inside_the_bound(tiny_run):
    from gantoolkit.sampling.generator import load_generator

    model = load_generator(tiny_run)
    z = model.latents(500, seed=3, truncation=0.5)
    assert z.abs().max() <= 0.5
    assert (model.latents(10, seed=3) == model.latents(10, seed=3)).all()


def test_same_seed_same_weights(cli):
    for out in ("one", "two"):
        assert cli(*train_args("--steps", "3", "--out", out)).exit_code == 0
    assert tensors_equal(Path("one/checkpoints/step-00000003.safetensors"),
                         Path("two/checkpoints/step-00000003.safetensors"), "generator")
    assert cli(*train_args("--steps", "3", "--seed", "5", "--out", "three")).exit_code == 0
    assert not tensors_equal(Path("one/checkpoints/step-00000003.safetensors"),
                             Path("three/checkpoints/step-00000003.safetensors"), "generator")


@pytest.mark.parametrize("loss", ["bce", "wgan", "wgan-gp"])
def test_resume_equals_uninterrupted_training_bit_for_bit(cli, loss):
    # constant rates: with --lr-decay (the digits recommend it for wgan-gp) a larger total re-lays the decay
    common = ("--loss", loss, "--cond", "onehot", "--ema", "0.9", "--lr-decay", "0", "--checkpoint-every", "3")
    assert cli(*train_args(*common, "--steps", "6", "--out", "straight")).exit_code == 0
    assert cli(*train_args(*common, "--steps", "3", "--out", "split")).exit_code == 0
    result = cli("train", "--resume", "split", "--steps", "6")
    assert result.exit_code == 0, result.output
    assert tensors_equal(Path("straight/checkpoints/step-00000006.safetensors"),
                         Path("split/checkpoints/step-00000006.safetensors"))
    steps = [json.loads(line)["step"] for line in Path("split/metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 3, 4, 6]


def test_a_resumed_run_records_the_same_provenance_as_the_first(cli):
    from gantoolkit.files.checkpoint import load_checkpoint

    assert cli(*train_args("--steps", "2", "--checkpoint-every", "2", "--out", "run")).exit_code == 0
    assert cli("train", "--resume", "run", "--steps", "4").exit_code == 0
    first, resumed = (load_checkpoint(Path(f"run/checkpoints/step-0000000{s}.safetensors")) for s in (2, 4))
    assert resumed.components == first.components and resumed.components["data"]["name"] == "digits"


def test_lr_decay_falls_linearly_to_zero_and_resumes_bit_for_bit(cli):
    common = ("--loss", "bce", "--lr", "0.0002", "--lr-decay", "0.5", "--steps", "8", "--checkpoint-every", "4")
    assert cli(*train_args(*common, "--out", "straight")).exit_code == 0
    assert cli(*train_args(*common, "--out", "split")).exit_code == 0
    Path("split/checkpoints/step-00000008.safetensors").unlink()  # as if killed after step 4's checkpoint
    assert cli("train", "--resume", "split").exit_code == 0
    assert tensors_equal(Path("straight/checkpoints/step-00000008.safetensors"),
                         Path("split/checkpoints/step-00000008.safetensors"))
    from gantoolkit.files.checkpoint import load_checkpoint

    def rates(step: int) -> list[float]:
        optim = load_checkpoint(Path(f"straight/checkpoints/step-{step:08d}.safetensors")).json("optim")
        return [group["lr"] for net in ("generator", "critic") for group in optim[net]["param_groups"]]

    assert rates(4) == pytest.approx([0.0002, 0.0002])  # the first half at the full rate
    assert rates(8) == pytest.approx([0.0002 / 4, 0.0002 / 4])  # the last step (index 7) at 1/4 of the rate
    refused = cli(*train_args("--lr-decay", "1.5", "--out", "bad"))
    assert refused.exit_code == 2 and "--lr-decay" in refused.output


def test_resume_continues_to_the_runs_own_total_and_refuses_changes(cli):
    assert cli(*train_args("--steps", "4", "--checkpoint-every", "2", "--out", "r")).exit_code == 0
    Path("r/checkpoints/step-00000004.safetensors").unlink()  # as if killed after step 2's checkpoint
    assert cli("train", "--resume", "r").exit_code == 0
    assert Path("r/checkpoints/step-00000004.safetensors").exists()
    refused = cli("train", "--resume", "r", "--steps", "8", "--loss", "wgan")
    assert refused.exit_code == 2 and "--loss cannot change when resuming" in refused.output


def test_a_damaged_newest_checkpoint_is_refused_with_the_way_to_resume_from_the_one_before(cli):
    assert cli(*train_args("--steps", "4", "--checkpoint-every", "2", "--out", "r")).exit_code == 0
    newest = Path("r/checkpoints/step-00000004.safetensors")
    newest.write_bytes(newest.read_bytes()[:1000])  # as if a copy of the run was cut short
    refused = cli("train", "--resume", "r", "--steps", "6")
    lines = refused.stderr.strip().splitlines()
    assert refused.exit_code == 2 and len(lines) == 1 and "truncated" in lines[0], refused.output
    assert f"move it out of {newest.parent} to resume from step 2" in lines[0]
    assert len(newest.read_bytes()) == 1000  # left as it was
    newest.rename("step-4.damaged")
    assert cli("train", "--resume", "r", "--steps", "6").exit_code == 0
    assert [step for step, _ in list_checkpoints(Path("r"))] == [2, 4, 6]


def test_a_run_being_trained_cannot_be_resumed_by_a_second_process(cli, tiny_run):
    from gantoolkit.files.runs import training_lock

    before = {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*")}
    with training_lock(tiny_run):  # another process training it (flock locks conflict across open files)
        refused = cli("train", "--resume", str(tiny_run), "--steps", "8")
        assert refused.exit_code == 2 and "is being trained by another process" in refused.stderr
        assert {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*")} == before  # nothing touched
    assert cli("train", "--resume", str(tiny_run), "--steps", "8").exit_code == 0  # free once it ends


def test_existing_run_directory_is_never_overwritten(cli, tiny_run):
    before = {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*")}
    result = cli(*train_args("--steps", "2", "--out", "run"))
    assert result.exit_code == 2
    assert "already exists" in result.output and "--resume run" in result.output
    assert {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*")} == before


def test_default_run_directory_gets_a_fresh_name(cli):
    for _ in range(2):
        assert cli(*train_args("--steps", "1")).exit_code == 0
    assert sorted(os.listdir("runs")) == ["digits-dcgan-bce-none", "digits-dcgan-bce-none-2"]


def test_vector_data_trains_and_samples_points(cli):
    result = cli("train", "--arch", "mlp", "--arch-opt", "hidden_dim=8", "--data", "toy:ring", "--data-opt", "n=512",
                 "--cond", "onehot", "--steps", "3", "--batch-size", "32", "--latent-dim", "4", "--out", "toy")
    assert result.exit_code == 0, result.output
    assert Image.open("toy/samples/step-00000003.png").mode == "RGB"  # a scatter plot
    assert cli("sample", "toy", "--n", "16", "--out", "points.npz").exit_code == 0
    arrays = np.load("points.npz")
    assert arrays["points"].dtype == np.float32 and arrays["points"].shape == (16, 2)
    assert cli("sample", "toy", "--n", "16", "--out", "pngs").exit_code == 2


def test_info_and_export(cli, tiny_run):
    result = cli("info", tiny_run, "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["step"] == 6 and summary["cond"]["name"] == "onehot" and summary["data"]["num_classes"] == 10
    assert "dcgan" in cli("info", tiny_run).stdout
    assert cli("export", tiny_run, "--out", "g.safetensors").exit_code == 0
    exported = load_file("g.safetensors")
    assert all(k.startswith("generator.") for k in exported)
    assert cli("info", "g.safetensors", "--json").exit_code == 0
    for name, source in (("x.npz", tiny_run), ("y.npz", "g.safetensors")):
        assert cli("sample", source, "--n", "4", "--seed", "9", "--out", name).exit_code == 0
    assert (np.load("x.npz")["images"] == np.load("y.npz")["images"]).all()
    resumed = cli("train", "--resume", "g.safetensors")
    assert resumed.exit_code == 2


def test_config_presets_and_files(cli, tmp_path):
    assert "digits-conditional" in cli("list", "configs").stdout
    Path("run.toml").write_text(
        'cond = "onehot"\nsteps = 2\nimage_size = 8\n[arch]\nname = "dcgan"\nngf = 8\nndf = 8\n'
    )
    result = cli("train", "--config", "run.toml", "--batch-size", "8", "--latent-dim", "4", "--out", "t")
    assert result.exit_code == 0, result.output
    info = json.loads(cli("info", "t", "--json").stdout)
    assert info["arch"] == {"name": "dcgan", "options": {"ngf": 8, "ndf": 8, "critic_norm": "auto",
                                                         "upsample": "transpose"}}
    assert info["cond"]["name"] == "onehot"


def test_list_and_plugins(cli):
    listing = cli("list", "losses", "wgan*", "--json")
    assert [r["name"] for r in json.loads(listing.stdout)] == ["wgan", "wgan-gp"]
    assert "gp_weight" in cli("list", "losses", "wgan-gp", "--options").stdout
    assert "folder:PATH" in cli("list", "datasets").stdout
    result = cli("plugins", "--json")
    plugins = json.loads(result.stdout)
    assert {p["name"] for p in plugins} >= {"gantoolkit.builtin.losses", "gantoolkit.builtin.archs"}
    assert all(not p["errors"] for p in plugins) and result.exit_code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--arch", "dcgann"], "did you mean 'dcgan'"),
        (["train", "--steps", "0"], "--steps must be at least 1"),
        (["train", "--data", "folder"], "needs an argument"),
        (["train", "--image-size", "12"], "power of two"),
        (["train", "--arch-opt", "ngf"], "KEY=VALUE"),
        (["train", "--no-such-flag"], "No such option"),
        (["sample", "missing-run", "--out", "x.png"], "does not exist"),
        (["list", "widgets"], "unknown component kind"),
    ],
)
def test_errors_are_one_line_without_traceback(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.process
def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gantoolkit.cli import build_app\n"
        "r = CliRunner().invoke(build_app(), ['--help'])\n"
        "assert r.exit_code == 0 and 'train' in r.stdout, r.output\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
