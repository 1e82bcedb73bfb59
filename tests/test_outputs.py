"""No `--out` replaces a file it should not: every command that writes a file the user names, attacked the way a
careless or hostile user would (their own PNG, JSON or NPZ, a checkpoint renamed .png, the input as the output, a
symbolic link, a run's checkpoints folder). A refusal is one line, exit code 2, no traceback, and not one byte on
disk created or changed; `--force` replaces what it may, and a command run again onto its own output works.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.conftest import TINY_DCGAN

pytestmark = pytest.mark.usefixtures("one_thread")

CKPT = "run/checkpoints/step-00000004.safetensors"


@dataclass(frozen=True)
class Writer:
    """A command that writes a file: its arguments ("{ckpt}": the checkpoint, "{stem}": the output's name without
    its suffix) and the file the test attacks."""

    name: str
    template: tuple[str, ...]
    target: str

    def args(self, stem: str, ckpt: str = "run", extra: tuple[str, ...] = ()) -> list[str]:
        return [a.format(stem=stem, ckpt=ckpt) for a in self.template] + list(extra)

    def path(self, stem: str) -> str:
        return self.target.format(stem=stem)

    def as_its_own_input(self, stem: str, extra: tuple[str, ...] = ()) -> list[str]:
        """The command with its output file given as its input too."""
        if "{ckpt}" in self.template:
            return self.args(stem, ckpt=self.path(stem), extra=extra)
        return self.args(stem, extra=("--pretrained-file", self.path(stem), *extra))


SEFA = ("--method", "sefa", "--num", "2")
WRITERS = [
    Writer("sample-png", ("sample", "{ckpt}", "--n", "4", "--out", "{stem}.png"), "{stem}.png"),
    Writer("sample-npz", ("sample", "{ckpt}", "--n", "4", "--out", "{stem}.npz"), "{stem}.npz"),
    Writer("interpolate-gif", ("interpolate", "{ckpt}", "--frames", "3", "--out", "{stem}.gif"), "{stem}.gif"),
    Writer("interpolate-npz", ("interpolate", "{ckpt}", "--frames", "3", "--out", "{stem}.npz"), "{stem}.npz"),
    Writer("arithmetic-png", ("arithmetic", "{ckpt}", "1 + 2", "--out", "{stem}.png"), "{stem}.png"),
    Writer("edit-npz", ("edit", "{ckpt}", "--classifier", "clf.safetensors", "--target", "1", "--n", "2", "--steps",
                        "1", "--out", "{stem}.npz"), "{stem}.npz"),
    Writer("directions", ("directions", "{ckpt}", *SEFA, "--out", "{stem}.safetensors"), "{stem}.safetensors"),
    Writer("directions-preview", ("directions", "{ckpt}", *SEFA, "--out", "{stem}-d.safetensors", "--preview",
                                  "{stem}.png"), "{stem}.png"),
    Writer("export", ("export", "{ckpt}", "--out", "{stem}.safetensors"), "{stem}.safetensors"),
    Writer("classifier-train", ("classifier", "train", "--data", "folder:rgb", "--image-size", "8", "--epochs", "1",
                                "--batch-size", "4", "--held-out", "0.5", "--out", "{stem}.safetensors"),
           "{stem}.safetensors"),
    Writer("evaluate", ("evaluate", "{ckpt}", "--metrics", "nn", "--n", "8", "--out", "{stem}.json"), "{stem}.json"),
    Writer("evaluate-nn-png", ("evaluate", "{ckpt}", "--metrics", "nn", "--n", "8", "--out", "{stem}.json"),
           "{stem}.nn.png"),
]
IDS = [w.name for w in WRITERS]
BY_NAME = {w.name: w for w in WRITERS}


def invoke(*args: str):
    from gantoolkit.cli import build_app

    result = CliRunner().invoke(build_app(), [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def own_file(suffix: str, seed: int = 0) -> bytes:
    """A file of this format that the user made without gantool."""
    if suffix in (".png", ".gif"):
        pixels = np.random.default_rng(seed).integers(0, 255, (8, 8), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=suffix[1:].upper())
        return buffer.getvalue()
    if suffix == ".npz":
        buffer = io.BytesIO()
        np.savez(buffer, images=np.zeros((2, 1, 8, 8), np.uint8), labels=np.arange(2))
        return buffer.getvalue()
    if suffix == ".json":
        return json.dumps({"fd": 1.5, "meta": {"note": "my own results"}}).encode()
    if suffix == ".safetensors":
        import torch
        from safetensors.torch import save

        return save({"w": torch.zeros(3)}, metadata={"format": "pt"})
    raise AssertionError(suffix)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A trained run, a classifier, directions, one file of each kind gantool writes, and the user's own files."""
    import torch

    from gantoolkit.registry import reset_registry

    root = tmp_path_factory.mktemp("inputs")
    reset_registry()
    torch.set_num_threads(1)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        invoke("train", *TINY_DCGAN, "--cond", "onehot", "--image-size", "8", "--steps", "4", "--checkpoint-every",
               "2", "--out", "run")
        for i in range(12):  # a folder of RGB images in two classes
            path = root / "rgb" / f"class{i % 2}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(path)
        invoke("classifier", "train", "--data", "digits", "--image-size", "8", "--epochs", "1", "--held-out", "0.5",
               "--out", "clf.safetensors")
        invoke("directions", "run", *SEFA, "--out", "dirs.safetensors")
        invoke("export", "run", "--out", "gen.safetensors")
        invoke("sample", "run", "--n", "4", "--out", "mine.png")
        invoke("sample", "run", "--n", "4", "--out", "mine.npz")
        invoke("interpolate", "run", "--frames", "3", "--out", "mine.gif")
        invoke("evaluate", "run", "--metrics", "nn", "--n", "8", "--out", "mine.json")
    finally:
        os.chdir(cwd)
    for suffix in (".png", ".gif", ".npz", ".json", ".safetensors"):
        (root / f"own{suffix}").write_bytes(own_file(suffix))
    (root / "notes.txt").write_text("my notes\n")
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` (links not followed) with its type and, for files, a hash of its contents."""
    out: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            out[str(path.relative_to(root))] = ("link", os.readlink(path))
        elif stat.S_ISREG(info.st_mode):
            out[str(path.relative_to(root))] = ("file", info.st_mtime_ns, hashlib.sha256(path.read_bytes()).digest())
        else:
            out[str(path.relative_to(root))] = ("other", stat.S_IFMT(info.st_mode))
    return out


@pytest.fixture
def work(cli, inputs, tmp_path) -> Path:
    shutil.copytree(inputs, tmp_path, dirs_exist_ok=True, copy_function=shutil.copy2)
    return tmp_path


def refused(cli, root: Path, args: list[str], message: str) -> None:
    """The command is refused in one line naming `message`, and nothing under `root` changes."""
    before = snapshot(root)
    result = cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert snapshot(root) == before


def written(cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.exit_code == 0, result.output


def kind_of(path: Path) -> str | None:
    from gantoolkit.files.outputs import identify

    return identify(path)[0]


KINDS = {".png": "png", ".gif": "gif", ".npz": "npz", ".json": "report"}
SAFETENSORS = {"export": ("gantoolkit/generator", "gen.safetensors"),
               "directions": ("gantoolkit-directions", "dirs.safetensors"),
               "classifier-train": ("gantoolkit-classifier", "clf.safetensors")}


def expected_kind(writer: Writer) -> str:
    suffix = Path(writer.path("x")).suffix
    return KINDS[suffix] if suffix in KINDS else SAFETENSORS[writer.name][0]


def gantool_file_of_the_same_kind(writer: Writer) -> str:
    suffix = Path(writer.path("x")).suffix
    return f"mine{suffix}" if suffix in KINDS else SAFETENSORS[writer.name][1]


def gantool_file_of_another_kind(writer: Writer) -> str:
    """A file gantool wrote that is not of the kind `writer` writes."""
    suffix = Path(writer.path("x")).suffix
    return {".png": "mine.npz", ".gif": "mine.png", ".npz": "mine.png", ".json": "mine.png",
            ".safetensors": "clf.safetensors" if writer.name != "classifier-train" else "dirs.safetensors"}[suffix]


# -- existing files of another kind ---------------------------------------------------------------------------------


FOREIGN = ["own-file-of-this-format", "any-bytes", "checkpoint-renamed", "gantool-file-of-another-kind"]


@pytest.mark.parametrize("foreign", FOREIGN)
@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
def test_an_existing_file_of_another_kind_is_not_replaced(cli, work, writer, foreign):
    target = work / writer.path("out")
    suffix = target.suffix
    content = {"own-file-of-this-format": lambda: own_file(suffix, seed=3),
               "any-bytes": lambda: b"the only copy of my thesis\n" * 10,
               "checkpoint-renamed": lambda: (work / CKPT).read_bytes(),
               "gantool-file-of-another-kind": lambda: (work / gantool_file_of_another_kind(writer)).read_bytes()}
    target.write_bytes(content[foreign]())
    refused(cli, work, writer.args("out"), f"'{target.name}' already exists and is ")
    assert "--force" in cli(*writer.args("out")).stderr  # the hint says how to replace it


@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
def test_force_replaces_a_users_file(cli, work, writer):
    target = work / writer.path("out")
    target.write_bytes(own_file(target.suffix, seed=5))
    written(cli, writer.args("out", extra=("--force",)))
    assert kind_of(target) == expected_kind(writer)


@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
def test_running_a_command_again_replaces_its_own_output(cli, work, writer):
    target = work / writer.path("again")
    written(cli, writer.args("again"))
    first = target.stat().st_ino
    written(cli, writer.args("again"))
    assert kind_of(target) == expected_kind(writer)
    assert target.stat().st_ino != first  # replaced (atomically, by a new file), not refused
    assert [p.name for p in work.iterdir() if p.name.endswith(".tmp")] == []  # no temporary file left


@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
def test_a_folder_fifo_or_dangling_link_as_the_output(cli, work, writer):
    target = work / writer.path("out")
    target.mkdir()
    refused(cli, work, writer.args("out", extra=("--force",)), f"'{target.name}' is a folder")
    target.rmdir()
    os.mkfifo(target)  # opening it would block: it is refused without being opened
    refused(cli, work, writer.args("out", extra=("--force",)), "is not a regular file")
    target.unlink()
    target.symlink_to(work / "gone.png")
    refused(cli, work, writer.args("out", extra=("--force",)), "is a symbolic link")
    assert not (work / "gone.png").exists()


# -- the input as the output ----------------------------------------------------------------------------------------


def the_input(work: Path, writer: Writer) -> Path:
    """A file the command reads (a checkpoint, or classifier weights), named as its output would be."""
    path = work / writer.path("in")
    source = CKPT if writer.name != "classifier-train" else "clf.safetensors"
    shutil.copy2(work / source, path)
    return path


@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
def test_the_input_is_never_the_output(cli, work, writer, force):
    extra = ("--force",) if force else ()
    source = the_input(work, writer)
    refused(cli, work, writer.as_its_own_input("in", extra), f"is the command's input '{source.name}'")


@pytest.mark.parametrize("link", ["symbolic", "hard", "input-through-a-link"])
@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
def test_the_input_is_never_the_output_through_a_link(cli, work, writer, link):
    source = the_input(work, writer)
    out = work / writer.path("out")
    if link == "symbolic":
        out.symlink_to(source.name)
    elif link == "hard":
        os.link(source, out)
    else:  # the input is given through a link to the file that is the output
        out.unlink(missing_ok=True)
        shutil.move(source, out)
        source.symlink_to(out.name)
    if "{ckpt}" in writer.template:
        args = writer.args("out", ckpt=source.name, extra=("--force",))
    else:
        args = writer.args("out", extra=("--pretrained-file", source.name, "--force"))
    refused(cli, work, args, "is the command's input")


def test_a_classifier_or_directions_file_given_as_input_is_not_the_output(cli, work):
    shutil.copy2(work / "clf.safetensors", work / "clf.npz")
    refused(cli, work, ["edit", "run", "--classifier", "clf.npz", "--target", "1", "--out", "clf.npz", "--force"],
            "--out 'clf.npz' is the command's input 'clf.npz'")
    shutil.copy2(work / "dirs.safetensors", work / "dirs.png")
    refused(cli, work, ["sample", "run", "--direction", "dirs.png:sefa0", "--out", "dirs.png", "--force"],
            "--out 'dirs.png' is the command's input 'dirs.png'")
    refused(cli, work, ["directions", "run", "--method", "classifier", "--classifier", "clf.safetensors", "--out",
                        "clf.safetensors", "--force"], "--out 'clf.safetensors' is the command's input")


def test_the_issue_example_sample_x_png_out_x_png(cli, work):
    shutil.copy2(work / CKPT, work / "X.png")
    refused(cli, work, ["sample", "X.png", "--out", "X.png"], "--out 'X.png' is the command's input 'X.png'")
    refused(cli, work, ["sample", "X.png", "--out", "X.png", "--force"], "is the command's input")
    refused(cli, work, ["sample", "run", "--out", CKPT.replace(".safetensors", ".png")],
            "is inside a run's checkpoints folder")


# -- symbolic links -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
def test_an_output_that_is_a_symbolic_link_is_never_written_through(cli, work, writer, force):
    target = work / writer.path("out")
    victim = work / f"own{target.suffix}"
    target.symlink_to(victim.name)
    refused(cli, work, writer.args("out", extra=("--force",) if force else ()), "is a symbolic link")
    target.unlink()
    target.symlink_to(gantool_file_of_the_same_kind(writer))  # even a link to a file it could replace
    refused(cli, work, writer.args("out", extra=("--force",) if force else ()), "is a symbolic link")


# -- a run's checkpoints folder -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gen.safetensors", "step-00000099.safetensors"])
@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
def test_an_export_is_never_written_into_a_runs_checkpoints(cli, work, name, force):
    from gantoolkit.files.runs import resolve_checkpoint

    refused(cli, work, ["export", "run", "--out", f"run/checkpoints/{name}", *(["--force"] if force else [])],
            f"--out 'run/checkpoints/{name}' is inside a run's checkpoints folder")
    assert resolve_checkpoint(work / "run").name == "step-00000004.safetensors"


def test_a_checkpoints_folder_without_metrics_is_still_a_runs(cli, work):
    (work / "copy" / "checkpoints").mkdir(parents=True)
    shutil.copy2(work / CKPT, work / "copy" / "checkpoints" / "step-00000004.safetensors")
    refused(cli, work, ["export", "run", "--out", "copy/checkpoints/generator.safetensors", "--force"],
            "is inside a run's checkpoints folder")
    (work / "checkpoints").mkdir()  # a folder of the user's that only happens to be called checkpoints
    written(cli, ["export", "run", "--out", "checkpoints/generator.safetensors"])
    refused(cli, work, ["export", "run", "--out", "checkpoints/step-00000001.safetensors", "--force"],
            "is inside a run's checkpoints folder")


# -- folders of PNGs ------------------------------------------------------------------------------------------------


def test_a_folder_of_pngs_is_replaced_only_when_gantool_sample_filled_it(cli, work):
    written(cli, ["sample", "run", "--n", "5", "--out", "pngs"])
    assert len(list((work / "pngs").iterdir())) == 5
    written(cli, ["sample", "run", "--n", "2", "--out", "pngs"])  # again, with fewer: exactly the new ones remain
    assert sorted(p.name[:6] for p in (work / "pngs").iterdir()) == ["000000", "000001"]
    (work / "pngs" / "holiday.png").write_bytes(own_file(".png"))
    refused(cli, work, ["sample", "run", "--n", "2", "--out", "pngs"], "it holds 'holiday.png'")
    refused(cli, work, ["sample", "run", "--n", "2", "--out", "pngs", "--force"], "it holds 'holiday.png'")
    (work / "pngs" / "holiday.png").unlink()
    (work / "pngs" / "000002-2.png").write_bytes(own_file(".png"))  # a user's PNG under a name gantool uses
    refused(cli, work, ["sample", "run", "--out", "pngs"],
            "it holds '000002-2.png', which gantool sample did not write")
    refused(cli, work, ["sample", "run", "--out", "rgb"], "--out 'rgb' already exists and is not an empty folder")
    (work / "links").symlink_to("pngs")
    refused(cli, work, ["sample", "run", "--out", "links"], "--out 'links' is a symbolic link")
    (work / "README").write_text("a file without a suffix")
    refused(cli, work, ["sample", "run", "--out", "README"], "'README' already exists and is a file, not a folder")
    refused(cli, work, ["sample", "run", "--out", "run/checkpoints"], "holds the command's input")
    if os.path.exists("/dev/full"):  # a device named as a folder of PNGs: named as what it is
        refused(cli, work, ["sample", "run", "--out", "/dev/full"], "'/dev/full' already exists and is a device")


# -- the marks, the module, the help --------------------------------------------------------------------------------


def test_the_marks_are_read_from_headers_and_invisible_to_readers(inputs):
    from gantoolkit.files.outputs import identify

    assert [identify(inputs / n)[0] for n in ("mine.png", "mine.gif", "mine.npz", "mine.json")] == [
        "png", "gif", "npz", "report"]
    assert identify(inputs / "gen.safetensors")[0] == "gantoolkit/generator"
    assert identify(inputs / CKPT)[0] == "gantoolkit/training"
    assert [identify(inputs / f"own{s}")[0] for s in (".png", ".gif", ".npz", ".json", ".safetensors")] == [None] * 5
    with np.load(inputs / "mine.npz", allow_pickle=False) as arrays:  # the mark is the archive's comment, not a key
        assert sorted(arrays.files) == ["images", "labels"]
    report = json.loads((inputs / "mine.json").read_text())
    assert report["meta"]["format"] == "gantoolkit-report" and report["meta"]["artefacts"]["nn"] == "mine.nn.png"


@pytest.mark.process
def test_the_output_check_does_not_import_torch():
    code = "import sys, gantoolkit.files.outputs; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("command", [["sample"], ["interpolate"], ["arithmetic"], ["edit"], ["directions"],
                                     ["export"], ["evaluate"], ["classifier", "train"]], ids=" ".join)
def test_every_writer_has_force_and_says_what_it_does(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    text = re.sub(r"[\s│]+", " ", result.output)
    assert "--force" in text and "Never replaces the command's input, a symbolic link" in text
