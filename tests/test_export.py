"""`gantool export --format onnx|torchscript|safetensors`: graphs that run without gantoolkit and match PyTorch."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import gantoolkit
from gantoolkit.cli import build_app
from gantoolkit.files.export import TOLERANCE
from tests.conftest import TINY_DCGAN, train_once

pytestmark = pytest.mark.usefixtures("one_thread")

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'gantoolkit[export]')")
onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'gantoolkit[export]')")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A tiny conditional DCGAN with EMA, and a tiny unconditional MLP with InfoGAN codes on 2-D data."""
    root = tmp_path_factory.mktemp("export")
    train_once(*TINY_DCGAN, "--loss", "bce", "--cond", "onehot", "--image-size", "8", "--steps", "2", "--ema", "0.9",
               "--out", root / "run")
    train_once("--data", "toy:ring", "--arch", "mlp", "--loss", "bce", "--controller", "infogan", "--batch-size", "16",
               "--latent-dim", "8", "--steps", "2", "--out", root / "codes")
    return root


def gantool(*args: object):
    return CliRunner().invoke(build_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def exported(work) -> dict[str, Path]:
    files = {}
    for run, fmt, name in (("run", "onnx", "g.onnx"), ("run", "torchscript", "g.pt"), ("codes", "onnx", "c.onnx"),
                           ("codes", "torchscript", "c.pt")):
        result = gantool("export", work / run, "--format", fmt, "--out", work / name)
        assert result.exit_code == 0, result.output
        assert "max |difference|" in result.output and f"tolerance {TOLERANCE:g}" in result.output
        files[name] = work / name
    return files


def seeded_npz(work: Path, run: str, seed: int, n: int) -> np.ndarray:
    out = work / f"{run}-{seed}-{n}.npz"
    result = gantool("sample", work / run, "--n", n, "--seed", seed, "--out", out, "--force")
    assert result.exit_code == 0, result.output
    with np.load(out) as arrays:
        return arrays["images"] if "images" in arrays else arrays["points"]


def to_uint8(samples: np.ndarray) -> np.ndarray:
    """What a program without gantoolkit does with the [-1, 1] images (the metadata's value_range)."""
    return np.round((np.clip(samples, -1, 1) + 1) * 127.5).astype(np.uint8)


def test_onnx_in_plain_onnxruntime_matches_gantool_sample(work, exported):
    session = ort.InferenceSession(str(exported["g.onnx"]), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["inputs"] == "z,labels" and meta["latent_dim"] == "16" and meta["value_range"] == "[-1, 1]"
    assert json.loads(meta["classes"]) == [str(i) for i in range(10)] and meta["opset"] == "17"
    assert meta["gantoolkit_version"] == gantoolkit.__version__ and "dynamo=False" in meta["exporter"]
    assert [i.shape[0] for i in session.get_inputs()] == ["batch", "batch"]  # a dynamic batch axis
    model = gantoolkit.load_generator(work / "run")
    n, seed = 7, 3
    images = session.run(None, {"z": model.latents(n, seed).numpy(), "labels": model.labels(n).numpy()})[0]
    reference = seeded_npz(work, "run", seed, n)
    in_model_space = reference.astype(np.float32) / 127.5 - 1
    assert np.abs(images - in_model_space).max() <= TOLERANCE + 1 / 127.5  # within rounding to uint8
    assert np.abs(to_uint8(images).astype(int) - reference).max() <= 1


def test_torchscript_in_plain_torch_is_bit_identical(work, exported):
    files = {"gantoolkit.json": ""}
    module = torch.jit.load(str(exported["g.pt"]), _extra_files=files)
    meta = json.loads(files["gantoolkit.json"])
    assert meta["inputs"] == "z,labels" and meta["export_format"] == "torchscript"
    model = gantoolkit.load_generator(work / "run")
    z, labels = model.latents(9, 4), model.labels(9)
    with torch.no_grad():
        assert torch.equal(module(z, labels), model.loaded.generate(z, labels))
    assert np.array_equal(model.sample(9, seed=4).numpy(), seeded_npz(work, "run", 4, 9))


def test_codes_are_an_input_of_a_controllers_generator(work, exported):
    model = gantoolkit.load_generator(work / "codes")
    z, codes = model.latents(6, 2), model.loaded.codes(6, 2)
    session = ort.InferenceSession(str(exported["c.onnx"]), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z", "codes"]
    points = session.run(None, {"z": z.numpy(), "codes": codes.numpy()})[0]
    assert np.abs(points - seeded_npz(work, "codes", 2, 6)).max() <= TOLERANCE
    module = torch.jit.load(str(exported["c.pt"]))
    with torch.no_grad():
        assert torch.equal(module(z, codes), model.loaded.generate(z, None, codes))


def test_safetensors_is_the_generator_only_checkpoint(work):
    out = work / "g.safetensors"
    result = gantool("export", work / "run", "--format", "safetensors", "--out", out)
    assert result.exit_code == 0, result.output
    assert np.array_equal(gantoolkit.load_generator(out).sample(5, seed=1).numpy(), seeded_npz(work, "run", 1, 5))


def test_exports_are_recognised_and_a_users_file_is_not_replaced(work, exported):
    before = exported["g.onnx"].read_bytes()
    assert gantool("export", work / "run", "--out", exported["g.onnx"]).exit_code == 0  # its own kind: replaced
    for name, fmt in (("mine.onnx", "onnx"), ("mine.pt", "torchscript")):
        user = work / name
        user.write_bytes(b"my own model")
        result = gantool("export", work / "run", "--format", fmt, "--out", user)
        assert result.exit_code == 2 and "already exists and is a file gantool did not write" in result.output
        assert user.read_bytes() == b"my own model"
        assert gantool("export", work / "run", "--format", fmt, "--out", user, "--force").exit_code == 0
    torch_onnx = work / "torch.onnx"  # an ONNX model that torch wrote, not gantool
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(torch_onnx), dynamo=False)
    result = gantool("export", work / "run", "--out", torch_onnx)
    assert result.exit_code == 2 and "is an ONNX model gantool did not write" in result.output
    npz = work / "s.npz"  # a gantool .npz is a zip gantool marked too, but not a TorchScript file
    assert gantool("sample", work / "run", "--n", 2, "--out", npz).exit_code == 0
    pt = work / "npz.pt"
    pt.write_bytes(npz.read_bytes())
    result = gantool("export", work / "run", "--out", pt)
    assert result.exit_code == 2 and "is an .npz gantool wrote" in result.output
    assert len(before) > 0 and zipfile.is_zipfile(io.BytesIO(exported["g.pt"].read_bytes()))


def test_a_missing_extra_is_one_line_naming_it(work, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    out = work / "missing.onnx"
    result = gantool("export", work / "run", "--format", "onnx", "--out", out)
    assert result.exit_code == 2 and not out.exists()
    lines = result.output.strip().splitlines()
    assert lines == ["error: --format onnx needs the onnxruntime package, which is not installed "
                     "(pip install 'gantoolkit[export]')"]


def test_an_untraceable_generator_names_its_components(work, monkeypatch):
    from gantoolkit.models import Generator

    def untraceable(self, z, labels=None, codes=None):
        if float(z.sum()) > -1e9:  # data-dependent Python control flow: the tracer cannot follow it
            raise RuntimeError("data-dependent control flow")
        return z

    monkeypatch.setattr(Generator, "forward", untraceable)
    result = gantool("export", work / "run", "--format", "torchscript", "--out", work / "bad.pt")
    assert result.exit_code == 2 and not (work / "bad.pt").exists()
    assert result.output.startswith("error: the TorchScript export of architecture 'dcgan' with conditioning "
                                    "'onehot' cannot be traced: RuntimeError: data-dependent control flow")
    assert len(result.output.strip().splitlines()) == 1


def test_an_export_beyond_the_tolerance_is_refused(work, monkeypatch):
    import gantoolkit.files.export as export

    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # no export can be that close
    result = gantool("export", work / "run", "--format", "onnx", "--out", work / "far.onnx")
    assert result.exit_code == 2 and not (work / "far.onnx").exists()
    assert "the ONNX export differs from PyTorch by up to" in result.output and "nothing was written" in result.output


def test_a_model_folder_loads_back_bit_identical(work):
    out = work / "folder"
    result = gantool("export", work / "run", "--format", "folder", "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "samples.png"]
    config = json.loads((out / "config.json").read_text())
    assert config["format"] == "gantoolkit-model-folder" and config["weights"] == "ema" and config["step"] == 2
    assert config["config"]["arch"] == {"name": "dcgan", "options": {"ngf": 8, "ndf": 8, "upsample": "transpose",
                                                                     "critic_norm": "auto"}}  # every option resolved
    assert config["components"]["arch"]["distribution"] == "gantoolkit"
    assert config["generator"]["inputs"] == ["z", "labels"] and config["generator"]["classes"][7] == "7"
    assert config["data"]["shape"] == [1, 8, 8]
    model = gantoolkit.load_generator(out)
    assert np.array_equal(model.sample(10, seed=6).numpy(), seeded_npz(work, "run", 6, 10))
    from gantoolkit.files.checkpoint import load_checkpoint
    from gantoolkit.files.runs import resolve_checkpoint

    ema = load_checkpoint(resolve_checkpoint(work / "run")).generator_state(prefer_ema=True)
    weights = load_checkpoint(out / "model.safetensors").generator_state()
    assert weights.keys() == ema.keys() and all(torch.equal(weights[k], ema[k]) for k in ema)
    card = (out / "README.md").read_text()
    assert "library_name: gantoolkit" in card and "![seed 0's samples](samples.png)" in card
    assert "for 2 of 2 steps on `digits`" in card and "the EMA generator" in card
    assert gantool("export", work / "run", "--format", "folder", "--out", out, "--no-ema").exit_code == 0  # again
    assert json.loads((out / "config.json").read_text())["weights"] == "generator"
    (out / "notes.txt").write_text("mine")
    result = gantool("export", work / "run", "--format", "folder", "--out", out, "--force")
    assert result.exit_code == 2 and "it holds 'notes.txt', which gantool export did not write" in result.output
    assert (out / "notes.txt").read_text() == "mine"


def test_the_model_card_reports_the_latest_evaluation(work):
    evaluated = gantool("evaluate", work / "codes", "--metrics", "modes,hq", "--n", 500, "--out",
                        work / "codes" / "evaluation.json")
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads((work / "codes" / "evaluation.json").read_text())
    out = work / "codes-folder"
    assert gantool("export", work / "codes", "--format", "folder", "--out", out).exit_code == 0
    card = (out / "README.md").read_text()
    assert "From the run's newest evaluation report, `evaluation.json`" in card
    assert f"| modes | {report['modes']:.4g} |" in card and f"| hq | {report['hq']:.4g} |" in card
    config = json.loads((out / "config.json").read_text())
    assert config["evaluation"]["metrics"]["modes"] == report["modes"]
    assert config["generator"]["inputs"] == ["z", "codes"] and config["generator"]["value_range"] is None
    assert np.array_equal(gantoolkit.load_generator(out).sample(5, seed=2).numpy(), seeded_npz(work, "codes", 2, 5))


#: each built-in architecture once, each built-in conditioning once (dcgan + onehot is the module's `run`)
COMBOS = [("mlp", "none"), ("pac", "onehot"), ("r3gan", "embed"), ("dcgan", "cbn"), ("dcgan", "acgan")]


@pytest.fixture(scope="module")
def combos(work) -> Path:
    for arch, cond in COMBOS:
        train_once("--arch", arch, "--cond", cond, "--loss", "bce", "--image-size", "8", "--batch-size", "8",
                   "--latent-dim", "8", "--steps", "1", "--out", work / f"{arch}-{cond}")
    return work


@pytest.mark.parametrize("arch, cond", COMBOS, ids=[f"{a}-{c}" for a, c in COMBOS])
def test_every_format_matches_gantool_sample(combos, arch, cond):
    run, n, seed = combos / f"{arch}-{cond}", 6, 5
    reference = seeded_npz(combos, f"{arch}-{cond}", seed, n)
    model = gantoolkit.load_generator(run)
    z, labels = model.latents(n, seed), model.labels(n)
    inputs = [z] if labels is None else [z, labels]
    for fmt, name in (("onnx", "g.onnx"), ("torchscript", "g.pt"), ("safetensors", "g.safetensors"),
                      ("folder", "folder")):
        out = combos / f"{arch}-{cond}-{name}"
        result = gantool("export", run, "--format", fmt, "--out", out)
        assert result.exit_code == 0, f"{fmt}: {result.output}"
        if fmt == "onnx":
            session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs, strict=True)}
            images = session.run(None, feed)[0]
            assert np.abs(to_uint8(images).astype(int) - reference).max() <= 1, fmt
            with torch.no_grad():
                assert np.abs(images - model.loaded.generate(*inputs).numpy()).max() <= TOLERANCE, fmt
        elif fmt == "torchscript":
            with torch.no_grad():
                images = torch.jit.load(str(out))(*inputs)
            assert np.array_equal(to_uint8(images.numpy()), reference), fmt
        else:
            assert np.array_equal(gantoolkit.load_generator(out).sample(n, seed=seed).numpy(), reference), fmt


@pytest.mark.process
def test_plain_onnxruntime_and_plain_torch_without_gantoolkit(work, exported):
    """The issue's example: the exported files run in a process that never imports gantoolkit."""
    import subprocess

    model = gantoolkit.load_generator(work / "run")
    n, seed = 5, 8
    inputs = work / "inputs.npz"
    np.savez(inputs, z=model.latents(n, seed).numpy(), labels=model.labels(n).numpy())
    code = (
        "import sys, numpy as np, onnxruntime, torch\n"
        f"x = np.load({str(inputs)!r})\n"
        f"s = onnxruntime.InferenceSession({str(exported['g.onnx'])!r}, providers=['CPUExecutionProvider'])\n"
        "a = s.run(None, {'z': x['z'], 'labels': x['labels']})[0]\n"
        f"b = torch.jit.load({str(exported['g.pt'])!r})(torch.from_numpy(x['z']), torch.from_numpy(x['labels']))\n"
        "assert not any(m.startswith('gantoolkit') for m in sys.modules)\n"
        f"np.savez({str(work / 'plain.npz')!r}, onnx=a, torchscript=b.detach().numpy())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reference = seeded_npz(work, "run", seed, n)
    with np.load(work / "plain.npz") as plain:
        assert np.abs(to_uint8(plain["onnx"]).astype(int) - reference).max() <= 1
        assert np.array_equal(to_uint8(plain["torchscript"]), reference)
