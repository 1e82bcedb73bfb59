"""Hostile checkpoints on `--resume` and `evaluate`, and absurd widths: a file chooses no path the program reads,
nothing about how the program runs (device, compiling, threads, loggers), and cannot make a resume delete the
run's checkpoints; models too large for the machine are refused before anything is allocated.

Each test is the attack or the mistake a user would make, through the real CLI: exit code 2 and one `error:` line on
stderr, no traceback, and nothing created or changed on disk.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tests.conftest import TINY_DCGAN
from tests.test_hostile_files import metadata, refused, rewrite, rewrite_png, snapshot

pytestmark = pytest.mark.usefixtures("one_thread")

FOLDER_CKPT = Path("frun/checkpoints/step-00000002.safetensors")
DIGITS_CKPT = Path("drun/checkpoints/step-00000004.safetensors")
REFUSED_PATH = "a path; gantool reads only the paths given on the command line"


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A 2-step run on a folder of 12 8x8 images (checkpoints 1 and 2), and a 4-step digits run that keeps 5
    checkpoints (1 to 4)."""
    from gantoolkit.cli import build_app
    from gantoolkit.registry import reset_registry

    reset_registry()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("hostile-resume")
    for i in range(12):
        rewrite_png(root / "pics" / f"{i}.png", i)

    def gantool(*args) -> None:
        result = CliRunner().invoke(build_app(), [str(a) for a in args])
        assert result.exit_code == 0, result.output

    tiny = [*TINY_DCGAN, "--image-size", "8", "--checkpoint-every", "1"]
    gantool("train", *tiny, "--data", f"folder:{root / 'pics'}", "--steps", "2", "--out", root / "frun")
    gantool("train", *tiny, "--steps", "4", "--keep-checkpoints", "5", "--out", root / "drun")
    # the folder run as a user makes it, with the relative path `pics` (the fixture trained on an absolute one)
    rewrite_in_place(root / FOLDER_CKPT, config={"data": {"name": "folder:pics", "options": {}}})
    return root


@pytest.fixture
def work(made, tmp_path, monkeypatch) -> Path:
    shutil.copytree(made, tmp_path, dirs_exist_ok=True, copy_function=shutil.copy2)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def rewrite_in_place(path: Path, **changes) -> Path:
    """`rewrite` onto the file itself (through a temporary file: the source is read while the copy is written)."""
    temporary = rewrite(path, path.with_name(path.name + ".new"), **changes)
    os.replace(temporary, path)
    return path


def steps_held(run: str) -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in Path(run, "checkpoints").glob("step-*.safetensors"))


def folders_read(monkeypatch) -> list[str]:
    """Every folder the folder data source scans (appended to the returned list)."""
    from gantoolkit.builtin.datasets import folder

    seen: list[str] = []
    scan = folder.scan_folder

    def recording(root, shown):
        seen.append(str(root))
        return scan(root, shown)

    monkeypatch.setattr(folder, "scan_folder", recording)
    return seen


# -- 1. paths come from the command line ----------------------------------------------------------------------------


def test_resuming_a_run_on_a_folder_asks_for_the_folder_and_follows_it_when_moved(cli, work, monkeypatch):
    seen = folders_read(monkeypatch)
    before = snapshot(work)
    line = refused(cli("train", "--resume", "frun", "--steps", "3"), f"its data is 'folder:pics', {REFUSED_PATH}")
    assert line.endswith("(give the run's data again: gantool train --resume frun --data folder:PATH)")
    assert seen == [] and snapshot(work) == before
    shutil.move("pics", "moved")  # the user moved the folder: the run goes on from where it is now
    done = cli("train", "--resume", "frun", "--steps", "3", "--data", "folder:moved")
    assert done.exit_code == 0, done.output
    assert steps_held("frun") == [1, 2, 3] and seen == ["moved"]
    saved = json.loads(metadata(Path("frun/checkpoints/step-00000003.safetensors"))["config"])
    assert saved["data"]["name"] == "folder:moved"


def test_a_checkpoint_naming_a_folder_of_its_own_choosing_makes_no_command_read_it(cli, work, monkeypatch):
    """The file says its data is the user's private folder (a real folder of images, so reading it would work)."""
    for i in range(12):
        rewrite_png(work / "private" / f"{i}.png", 100 + i)
    rewrite(FOLDER_CKPT, Path("evil/checkpoints/step-00000002.safetensors"),
            config={"data": {"name": f"folder:{work / 'private'}", "options": {}}})
    seen = folders_read(monkeypatch)
    before = snapshot(work)
    for args, fix in ((["train", "--resume", "evil", "--steps", "3"],
                       "give the run's data again: gantool train --resume evil"),
                      (["evaluate", "evil", "--metrics", "nn", "--out", "r.json"], "name the data on the command line"),
                      (["sample", "evil", "--sampler", "drs", "--critic-steps", "2", "--out", "x.png"],
                       "name the data on the command line")):
        line = refused(cli(*args), REFUSED_PATH)
        assert f"({fix}" in line and line.endswith("--data folder:PATH)")
    assert seen == [] and snapshot(work) == before


def test_evaluate_and_the_critic_samplers_read_the_folder_the_command_line_gives(cli, work, monkeypatch):
    seen = folders_read(monkeypatch)
    report = cli("evaluate", "frun", "--data", "folder:pics", "--metrics", "nn", "--out", "r.json")
    assert report.exit_code == 0, report.output
    drawn = cli("sample", "frun", "--sampler", "drs", "--critic-steps", "2", "--data", "folder:pics", "--n", "4",
                "--out", "x.png")
    assert drawn.exit_code == 0, drawn.output
    assert seen == ["pics", "pics"] and Path("r.json").is_file() and Path("x.png").is_file()
    refused(cli("sample", "frun", "--data", "folder:pics", "--out", "y.png"),
            "--data is read only by a --sampler that trains on real data")
    assert not Path("y.png").exists()


@pytest.mark.parametrize("run, data, fix", [
    ("frun", "digits", "give --data folder:PATH"),
    ("drun", "folder:pics", "give --data digits"),
    ("drun", "toy:ring", "give --data digits"),
])
def test_a_resume_reads_the_runs_own_data_source(cli, work, run, data, fix):
    before = snapshot(work)
    line = refused(cli("train", "--resume", run, "--steps", "9", "--data", data),
                   f"--data {data} is not the data the run was trained on")
    assert line.endswith(f"(drop --data, or {fix})")
    assert snapshot(work) == before


# -- 2. what the program does comes from the command line -----------------------------------------------------------


def test_a_checkpoint_chooses_neither_device_compiling_threads_nor_loggers_of_a_resume(cli, work, monkeypatch):
    import gantoolkit.device as device_module

    compiled: list[object] = []
    monkeypatch.setattr(device_module.torch, "compile", lambda fn, *a, **k: compiled.append(fn) or fn)
    rewrite_in_place(DIGITS_CKPT, config={"device": "cuda:3", "compile": True, "threads": 1024,
                                          "loggers": ["tensorboard"]})
    result = cli("train", "--resume", "drun", "--steps", "5")  # digits: embedded data needs no --data
    assert result.exit_code == 0, result.output
    assert compiled == [] and torch.get_num_threads() == 1 and not Path("drun/tb").exists()
    assert "device cpu" in result.stderr
    assert "note: the run was also logged with --logger tensorboard; a checkpoint does not choose loggers" in \
        result.stderr
    saved = json.loads(metadata(Path("drun/checkpoints/step-00000005.safetensors"))["config"])
    assert (saved["device"], saved["compile"], saved["threads"], saved["loggers"]) == ("auto", False, None, [])


@pytest.mark.parametrize("keep", [0, -5, 1])
def test_a_checkpoint_cannot_make_a_resume_delete_the_runs_checkpoints(cli, work, keep):
    """The run keeps 5 and holds steps 1-4; the newest file says keep_checkpoints=KEEP."""
    rewrite_in_place(DIGITS_CKPT, config={"keep_checkpoints": keep})
    older = {p: p.read_bytes() for p in Path("drun/checkpoints").glob("step-0000000[23].safetensors")}
    result = cli("train", "--resume", "drun", "--steps", "5")
    assert result.exit_code == 0, result.output
    assert steps_held("drun") == [2, 3, 4, 5]  # as many as the run held: only the rotation's oldest went
    assert all(p.read_bytes() == data for p, data in older.items())
    if keep == 1:  # the user's own --keep-checkpoints is obeyed
        done = cli("train", "--resume", "drun", "--steps", "6", "--keep-checkpoints", "2")
        assert done.exit_code == 0, done.output
        assert steps_held("drun") == [5, 6]


# -- 3. models too large for the machine ----------------------------------------------------------------------------


@pytest.mark.parametrize("size, expected", [
    ("8", "of 276,000,001,025 parameters (1.1 TB as float32), more than the"),  # one wide layer
    ("64", "too large for any machine (their sizes overflow 64 bits)"),  # two: ngf*8 x ngf*4 x 4 x 4 weights
])
def test_an_absurd_width_on_the_command_line_is_refused_before_anything_is_allocated(cli, work, size, expected):
    before = snapshot(work)
    line = refused(cli("train", "--arch", "dcgan", "--arch-opt", "ngf=1000000000", "--latent-dim", "16",
                       "--image-size", size, "--steps", "1", "--out", "big"), "ngf=1000000000")
    assert "architecture 'dcgan' with ngf=1000000000" in line and f"a latent size of 16 makes models {expected}" in line
    assert line.endswith("(use smaller widths (--arch-opt) or a smaller --latent-dim)")
    refused(cli("train", *TINY_DCGAN[:-2], "--latent-dim", str(10**9), "--steps", "1", "--out", "big"),
            "--latent-dim must be at most 65,536, got 1,000,000,000")
    assert not Path("big").exists() and not Path("runs").exists() and snapshot(work) == before


def test_a_checkpoint_claiming_absurd_widths_is_refused_before_its_models_are_built(cli, work):
    wide = {"arch": {"name": "dcgan", "options": {"ngf": 10**9, "ndf": 8}}}
    path = rewrite(DIGITS_CKPT, work / "wide.safetensors", config=wide)
    rewrite(DIGITS_CKPT, Path("wide-run/checkpoints/step-00000004.safetensors"), config=wide)
    before = snapshot(work)
    for args in (["sample", path, "--out", "x.png"], ["demo", path],
                 ["evaluate", path, "--metrics", "nn", "--out", "r.json"],
                 ["train", "--resume", "wide-run", "--steps", "9"]):
        line = refused(cli(*args), "describes models this machine cannot hold: its architecture 'dcgan' with "
                                   "ngf=1000000000")
        assert line.endswith("(the file is damaged, or was made on a machine with more memory)")
    assert snapshot(work) == before


def test_an_allocation_that_fails_while_the_models_are_built_is_one_line(cli, work, monkeypatch):
    """Where the parameters cannot be counted beforehand, a failed allocation is the same refusal."""
    from gantoolkit.training import run as training
    from gantoolkit.training import sizing
    def exhausted(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you "
                           "tried to allocate 1099511627776 bytes.")

    monkeypatch.setattr(sizing, "counted_values", lambda build: None)
    monkeypatch.setattr(training, "build_models", exhausted)
    line = refused(cli("train", *TINY_DCGAN, "--image-size", "8", "--steps", "1", "--out", "r"), "ngf=8")
    assert "makes models too large for the memory available (use smaller widths" in line
    assert not Path("r").exists()


def test_the_count_is_exact_and_draws_no_random_numbers(monkeypatch):
    from gantoolkit.config import Choice, RunConfig
    from gantoolkit.data import IMAGE, DataInfo
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry
    from gantoolkit.training import sizing

    config = RunConfig(arch=Choice("dcgan", {"ngf": 8, "ndf": 8}), cond=Choice("onehot"), latent_dim=16)
    info, registry = DataInfo("digits", IMAGE, (1, 8, 8), 10), get_registry()

    def build():
        return build_models(config, info, registry)

    torch.manual_seed(0)
    counted = sizing.counted_values(build)
    first = build()  # the same weights as without the count before it
    torch.manual_seed(0)
    again = build()
    assert all(torch.equal(a, b) for a, b in zip(first.generator.state_dict().values(),
                                                 again.generator.state_dict().values(), strict=True))
    real = sum(t.numel() for m in (first.generator, first.critic) for t in (*m.parameters(), *m.buffers()))
    assert counted == real > 0
    monkeypatch.setattr(sizing, "available_memory", lambda: real * sizing.BYTES_PER_VALUE)
    assert sizing.build_within_memory(build, config, registry, "hint").generator is not None  # exactly fits
    monkeypatch.setattr(sizing, "available_memory", lambda: real * sizing.BYTES_PER_VALUE - 1)
    with pytest.raises(sizing.ModelTooLargeError, match=f"makes models of {real:,} parameters"):
        sizing.build_within_memory(build, config, registry, "hint")


@pytest.mark.parametrize("args, message", [
    (["--arch", "mlp", "--data", "toy:ring", "--latent-dim", "4", "--data-opt", f"n={10**12}"],
     "toy n must be between 1 and 10,000,000, got 1,000,000,000,000"),
    ([*TINY_DCGAN, "--image-size", "8", "--track", "classes", "--track-n", str(10**9)],
     "--track-n must be between 2 and 100,000, got 1,000,000,000"),
])
def test_absurd_data_and_measurement_sizes_are_refused(cli, work, args, message):
    before = snapshot(work)
    refused(cli("train", *args, "--steps", "1", "--out", "big"), message)
    rewrite(DIGITS_CKPT, Path("sized/checkpoints/step-00000004.safetensors"),
            config={"track": ["classes"], "track_n": 10**9})
    refused(cli("train", "--resume", "sized", "--steps", "9"), "--track-n must be between 2 and 100,000")
    assert not Path("big").exists() and not Path("runs").exists()
    assert {k: v for k, v in snapshot(work).items() if not k.startswith("sized")} == before
