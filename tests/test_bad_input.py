"""A catalogue of bad inputs through the real CLI: each one is refused with exit code 2 and exactly one line on
stderr (`error: ` + what was wrong + what to do), no traceback, and not one file on disk created, changed or removed.

The inputs are made once per module (a trained run, an exported generator, a classifier for other images, a folder
with a corrupt PNG, foreign, truncated and hand-edited checkpoints, pickles that would leave a marker file if they
were ever executed, ...) and copied into each test's working directory.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from tests.conftest import TINY_DCGAN

MARKER = "EXECUTED"


class Payload:
    """Unpickling this creates the file MARKER in the working directory: proof that a file was executed."""

    def __reduce__(self):
        return (open, (MARKER, "w"))


pytestmark = pytest.mark.usefixtures("one_thread")


def rewrite(source: Path, target: Path, config: dict | None = None, tensors: dict | None = None, **meta: str):
    """A copy of a checkpoint with changed metadata, configuration entries or tensors."""
    with safe_open(str(source), framework="pt") as fh:
        metadata = dict(fh.metadata())
    if config is not None:
        metadata["config"] = json.dumps({**json.loads(metadata["config"]), **config})
    metadata.update(meta)
    save_file(tensors if tensors is not None else load_file(str(source)), str(target), metadata=metadata)


def png(path: Path, channels: int = 1, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (8, 8, channels), dtype=np.uint8)
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    from gantoolkit.cli import build_app
    from gantoolkit.registry import reset_registry

    root = tmp_path_factory.mktemp("inputs")
    reset_registry()
    torch.set_num_threads(1)

    def gantool(*args: str) -> None:
        result = CliRunner().invoke(build_app(), [str(a) for a in args])
        assert result.exit_code == 0, result.output

    gantool("train", *TINY_DCGAN, "--cond", "onehot", "--image-size", "8", "--steps", "4", "--checkpoint-every", "2",
            "--out", root / "run")
    newest = root / "run" / "checkpoints" / "step-00000004.safetensors"
    (root / "genrun" / "checkpoints").mkdir(parents=True)
    gantool("export", root / "run", "--out", root / "generator.safetensors")  # export refuses a run's checkpoints/
    (root / "generator.safetensors").rename(root / "genrun" / "checkpoints" / "step-00000004.safetensors")
    gantool("train", *TINY_DCGAN, "--image-size", "8", "--steps", "2", "--out", root / "other")
    gantool("directions", root / "run", "--method", "sefa", "--num", "2", "--out", root / "dirs.safetensors")
    for i in range(12):  # a folder of RGB images in two classes, and a classifier for them
        png(root / "rgb" / f"class{i % 2}" / f"{i}.png", channels=3, seed=i)
    gantool("classifier", "train", "--data", f"folder:{root / 'rgb'}", "--image-size", "8", "--epochs", "1",
            "--batch-size", "4", "--held-out", "0.5", "--out", root / "rgb-classifier.safetensors")

    for i in range(3):
        png(root / "pics" / f"{i}.png", seed=i)
        png(root / "flat" / f"{i}.png", seed=i)
    (root / "pics" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)  # a PNG cut short
    (root / "allbad").mkdir()
    (root / "allbad" / "x.png").write_bytes(b"not an image")
    (root / "empty").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("no images here")

    (root / "evil.safetensors").write_bytes(pickle.dumps(Payload()))
    (root / "evil.pt").write_bytes(pickle.dumps(Payload(), protocol=2))
    torch.save({"w": torch.zeros(2)}, root / "torch.pt")
    save_file({"w": torch.zeros(3)}, str(root / "foreign.safetensors"))
    data = newest.read_bytes()
    (root / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (root / "empty.safetensors").write_bytes(b"")
    rewrite(newest, root / "future.safetensors", format_version="99")
    rewrite(newest, root / "os-system.safetensors", config={"arch": {"name": "os:system", "options": {}}})
    rewrite(newest, root / "damaged.safetensors", config=None, data="{not json")
    wider = {"arch": {"name": "dcgan", "options": {"ngf": 16, "ndf": 8}}}
    rewrite(newest, root / "mismatched.safetensors", config=wider)
    (root / "bad.toml").write_text("steps = = 3\n")
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` with its size, modification time and a hash of its contents."""
    out = {}
    for path in sorted(root.rglob("*")):
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        out[str(path.relative_to(root))] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns, digest)
    return out


RUN = ["train", *TINY_DCGAN, "--image-size", "8", "--steps", "2"]

CASES = [
    # unknown component names: the closest names are suggested
    ("unknown-arch", [*RUN, "--arch", "dcgann"], "unknown architecture 'dcgann' (did you mean 'dcgan'"),
    ("unknown-loss", [*RUN, "--loss", "wgan_gp"], "unknown loss 'wgan_gp' (did you mean 'wgan-gp'"),
    ("unknown-cond", [*RUN, "--cond", "one-hot"], "unknown conditioning 'one-hot' (did you mean 'onehot'"),
    ("unknown-data", [*RUN, "--data", "digit"], "unknown dataset 'digit' (did you mean 'digits'"),
    ("unknown-optimizer", [*RUN, "--optimizer", "adamm"], "unknown optimizer 'adamm' (did you mean 'adam'"),
    ("unknown-controller", [*RUN, "--controller", "nosuch"], "unknown controller 'nosuch'"),
    ("unknown-option", [*RUN, "--arch-opt", "ngff=8"], "architecture 'dcgan' has no option 'ngff' (did you mean 'ngf'"),
    ("unknown-kind", ["list", "widgets"], "unknown component kind 'widgets'"),
    ("unknown-class", ["sample", "run", "--class", "seven", "--out", "x.png"], "unknown class 'seven'"),
    # invalid numbers
    ("zero-steps", [*RUN, "--steps", "0"], "--steps must be at least 1, got 0"),
    ("negative-batch", [*RUN, "--batch-size", "-4"], "--batch-size must be at least 1, got -4"),
    ("zero-latent", [*RUN, "--latent-dim", "0"], "--latent-dim must be at least 1, got 0"),
    ("zero-lr", [*RUN, "--lr", "0"], "--lr must be a positive finite number, got 0.0"),
    ("infinite-lr", [*RUN, "--lr-g", "inf"], "--lr-g must be a positive finite number, got inf"),
    ("nan-lr", [*RUN, "--lr-d", "nan"], "lr-d must be a number, got nan"),
    ("ema-one", [*RUN, "--ema", "1"], "--ema is a decay in [0, 1)"),
    ("betas", [*RUN, "--betas", "1,0.9"], "--betas must lie in [0, 1)"),
    ("zero-critic-steps", [*RUN, "--n-critic", "0"], "--n-critic must be at least 1"),
    ("negative-seed", [*RUN, "--seed", "-1"], "--seed must be between 0 and 4294967295, got -1"),
    ("huge-seed", [*RUN, "--seed", str(2**70)], "--seed must be between 0 and 4294967295"),
    ("bad-on-nan", [*RUN, "--on-nan", "ignore"], "on-nan must be one of stop, rollback, got 'ignore'"),
    ("option-type", [*RUN, "--arch-opt", "ngf=many"], "option ngf expects int, got 'many'"),
    ("zero-samples", ["sample", "run", "--n", "0", "--out", "x.png"], "--n must be at least 1, got 0"),
    ("class-out-of-range", ["sample", "run", "--class", "10", "--out", "x.png"], "class 10 is out of range"),
    ("negative-sample-seed", ["sample", "run", "--seed", "-1", "--out", "x.png"], "seed must be between 0 and"),
    ("zero-truncation", ["sample", "run", "--truncation", "0", "--out", "x.png"], "--truncation must be positive"),
    ("one-frame", ["interpolate", "run", "--frames", "1", "--out", "w.png"], "--frames must be between 2 and 1024"),
    ("million-frames", ["interpolate", "run", "--frames", "1000000", "--out", "w.png"],
     "--frames must be between 2 and 1024"),
    # image sizes an architecture cannot make
    ("size-not-power-of-two", [*RUN, "--image-size", "12"], "power of two from 8 up, got 12x12 (pass --image-size 16)"),
    ("size-too-small", [*RUN, "--image-size", "4"], "power of two from 8 up, got 4x4 (pass --image-size 8)"),
    ("size-absurd", [*RUN, "--image-size", "100000"], "--image-size must be between 1 and 4096 pixels"),
    ("vectors-for-images", ["train", *TINY_DCGAN, "--steps", "2", "--data", "toy:ring"],
     "dcgan models images, but 'toy:ring' holds vectors"),
    ("image-size-for-vectors", [*RUN, "--data", "toy:ring"], "--image-size 8 applies to images, but 'toy:ring' holds"),
    # folders
    ("missing-folder", [*RUN, "--data", "folder:missing"], "image folder 'missing' does not exist"),
    ("empty-folder", [*RUN, "--data", "folder:empty"], "no images in empty (found nothing)"),
    ("no-image-files", [*RUN, "--data", "folder:notes"], "found 1 file(s) but none with an image extension"),
    ("unlabelled-folder", [*RUN, "--data", "folder:flat", "--cond", "onehot"],
     "conditioning 'onehot' needs labelled data, but 'folder:flat' has no labels"),
    ("corrupt-image", [*RUN, "--data", "folder:pics"], "cannot read image broken.png in pics"),
    ("only-corrupt-images", [*RUN, "--data", "folder:allbad", "--on-bad-image", "skip"],
     "none of the 1 image(s) in allbad could be read"),
    ("bad-image-policy", [*RUN, "--data", "folder:pics", "--on-bad-image", "ignore"],
     "on-bad-image must be one of error, skip"),
    # checkpoints
    ("missing-checkpoint", ["sample", "nowhere.safetensors", "--out", "x.png"], "'nowhere.safetensors' does not exist"),
    ("no-checkpoint-in-folder", ["sample", "empty", "--out", "x.png"], "'empty' holds no checkpoint"),
    ("empty-checkpoint", ["info", "empty.safetensors"], "'empty.safetensors' is empty or truncated"),
    ("truncated-checkpoint", ["sample", "truncated.safetensors", "--out", "x.png"],
     "'truncated.safetensors' is not a safetensors checkpoint, or is truncated"),
    ("foreign-checkpoint", ["info", "foreign.safetensors"], "not a gantoolkit checkpoint (no gantoolkit metadata)"),
    ("pickle-as-safetensors", ["sample", "evil.safetensors", "--out", "x.png"],
     "'evil.safetensors' is a pickle file (protocol 4); gantoolkit never unpickles files"),
    ("pickle-as-pt", ["export", "evil.pt", "--out", "g.safetensors"], "'evil.pt' is a pickle file"),
    ("torch-save-zip", ["info", "torch.pt"], "'torch.pt' is a zip archive (torch.save or .npz)"),
    ("pickle-resumed", ["train", "--resume", "evil.pt"], "'evil.pt' is not a run directory"),
    ("newer-format", ["sample", "future.safetensors", "--out", "x.png"], "this gantoolkit reads 1..1 (upgrade"),
    ("damaged-metadata", ["info", "damaged.safetensors"], "'damaged.safetensors' has damaged metadata"),
    ("import-path-as-arch", ["sample", "os-system.safetensors", "--out", "x.png"], "unknown architecture 'os:system'"),
    ("weights-do-not-match", ["sample", "mismatched.safetensors", "--out", "x.png"],
     "does not match the generator its configuration builds (size mismatch for body.main.0.weight"),
    ("resume-generator-only", ["train", "--resume", "genrun"], "holds a generator only and cannot be resumed"),
    ("resume-finished", ["train", "--resume", "run", "--steps", "4"], "the run is already at step 4 of 4"),
    ("resume-changes-loss", ["train", "--resume", "run", "--steps", "8", "--loss", "wgan"],
     "--loss cannot change when resuming"),
    ("resume-not-a-run", ["train", "--resume", "pics"], "'pics' is not a run directory"),
    ("bad-toml", ["train", "--config", "bad.toml"], "config file 'bad.toml' is not valid TOML"),
    ("binary-config", ["train", "--config", "evil.pt"], "'evil.pt' is a pickle file (protocol 2), not TOML"),
    # run directories and outputs: nothing is ever overwritten
    ("existing-run", [*RUN, "--out", "run"], "'run' already exists and is not empty (continue it with --resume run)"),
    ("out-is-a-file", [*RUN, "--out", "notes/readme.txt"], "'notes/readme.txt' is a file, not a run directory"),
    ("sample-into-run", ["sample", "run", "--out", "run"],
     "--out 'run' holds the command's input 'run/checkpoints/step-00000004.safetensors'"),
    ("sample-into-a-folder", ["sample", "run", "--out", "notes"],
     "--out 'notes' already exists and is not an empty folder: it holds 'readme.txt'"),
    ("sample-type", ["sample", "run", "--out", "x.jpg"], "unknown output type '.jpg'"),
    ("export-type", ["export", "run", "--out", "g.txt"], "cannot tell the format from --out"),
    ("export-format", ["export", "run", "--format", "onnx", "--out", "g.pt"], "--format onnx writes a .onnx file"),
    ("export-onto-itself", ["export", "run", "--out", "run/checkpoints/step-00000004.safetensors"],
     "--out 'run/checkpoints/step-00000004.safetensors' is the command's input"),
    # directions and classifiers that do not match the checkpoint, or are not what they claim
    ("directions-of-another-run", ["sample", "other", "--direction", "dirs.safetensors:sefa0", "--out", "s.png"],
     "the directions in 'dirs.safetensors' belong to"),
    ("unknown-direction", ["sample", "run", "--direction", "dirs.safetensors:sefa7", "--out", "s.png"],
     "no direction 'sefa7' in these sefa directions"),
    ("direction-without-name", ["sample", "run", "--direction", "dirs.safetensors", "--out", "s.png"],
     "--direction expects FILE:NAME"),
    ("nan-alpha", ["sample", "run", "--direction", "dirs.safetensors:sefa0", "--alphas", "nan,3", "--out", "s.png"],
     "--alphas must be finite numbers between -1000 and 1000"),
    ("huge-alpha", ["sample", "run", "--direction", "dirs.safetensors:sefa0", "--alphas", "-1e9,3", "--out", "s.png"],
     "--alphas must be finite numbers"),
    ("huge-strip", ["sample", "run", "--direction", "dirs.safetensors:sefa0", "--alphas", "-3,3", "--steps", "100000",
                    "--out", "s.png"], "--steps must be between 2 and 1024"),
    ("checkpoint-as-directions", ["sample", "run", "--direction", "run/checkpoints/step-00000004.safetensors:x",
                                  "--out", "s.png"], "not a directions"),
    ("demo-directions-of-another-run", ["demo", "other", "--directions", "dirs.safetensors"],
     "the directions in 'dirs.safetensors' belong to"),
    ("demo-pickle", ["demo", "evil.pt"], "'evil.pt' is a pickle file (protocol 2); gantoolkit never unpickles files"),
    ("demo-port", ["demo", "run", "--port", "0"], "--port must be between 1 and 65535, got 0"),
    ("unknown-direction-method", ["directions", "run", "--method", "sefaa", "--out", "d.safetensors"],
     "unknown finder 'sefaa' (did you mean 'sefa'"),
    ("zero-directions", ["directions", "run", "--method", "sefa", "--num", "0", "--out", "d.safetensors"],
     "num must be at least 1"),
    ("directions-over-a-checkpoint", ["directions", "run", "--method", "sefa", "--out",
                                      "run/checkpoints/step-00000004.safetensors"],
     "--out 'run/checkpoints/step-00000004.safetensors' is the command's input"),
    ("export-over-another-run", ["export", "run", "--out", "other/checkpoints/step-00000002.safetensors"],
     "--out 'other/checkpoints/step-00000002.safetensors' is inside a run's checkpoints folder"),
    ("classifier-over-directions", ["classifier", "train", "--out", "dirs.safetensors"],
     "--out 'dirs.safetensors' already exists and is a gantoolkit directions file; it is not replaced"),
    ("classifier-for-rgb", ["edit", "run", "--classifier", "rgb-classifier.safetensors", "--target", "class0",
                            "--out", "e.png"], "the classifier takes 3-channel images, the generator makes 1"),
    ("classifier-unknown-class", ["edit", "run", "--classifier", "rgb-classifier.safetensors", "--target", "cat",
                                  "--out", "e.png"], "'cat'"),
    ("checkpoint-as-classifier", ["edit", "run", "--classifier", "run/checkpoints/step-00000004.safetensors",
                                  "--target", "1", "--out", "e.png"], "not a classifier"),
    ("pickle-as-classifier", ["classifier", "info", "evil.safetensors"], "gantoolkit never unpickles"),
    ("unknown-metric", ["evaluate", "run", "--metrics", "fid2", "--out", "r.json"], "unknown metric 'fid2'"),
]


@pytest.mark.parametrize("args, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_and_touches_nothing(cli, inputs, tmp_path, args, message):
    shutil.copytree(inputs, tmp_path, dirs_exist_ok=True, copy_function=shutil.copy2)
    before = snapshot(tmp_path)
    result = cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert snapshot(tmp_path) == before
    assert not (tmp_path / MARKER).exists()

