"""gantool-sngan installed for real (`pip install --target` from a copy of plugins/gantool-sngan), then used the way a
user would: `python -m gantoolkit ...` in subprocesses that find it through its entry point, and without it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gantoolkit.files.checkpoint import load_checkpoint

pytestmark = pytest.mark.process  # every test here starts processes

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "gantool-sngan"
TRAIN = ["train", "--arch", "resnet-sn", "--arch-opt", "ngf=16", "--arch-opt", "ndf=16", "--loss", "hinge",
         "--cond", "projection", "--image-size", "16", "--steps", "4", "--batch-size", "16", "--latent-dim", "16",
         "--log-every", "2", "--checkpoint-every", "2", "--out", "run"]


def run(args: list[str], cwd: Path, site: Path | None, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """A subprocess with plugin autoload on (as for a user), the plugin on PYTHONPATH when `site` is given."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GANTOOL_")}
    environ["OMP_NUM_THREADS"] = "1"
    if site is not None:
        environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), environ.get("PYTHONPATH", "")) if p)
    environ.update(env)
    return subprocess.run(args, cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout)


def gantool(*args: str, cwd: Path, site: Path | None, **env: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "gantoolkit", *args], cwd, site, **env)


def builds_wheels_offline() -> bool:
    """Whether this environment's setuptools can build a wheel by itself (>= 70.1, or older with `wheel`)."""
    try:
        release = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    version = tuple(int(p) for p in release.split(".")[:2] if p.isdigit())
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


def pip_install(source: Path | list[Path], target: Path) -> None:
    """`pip install --target TARGET SOURCE...`, offline when the environment can build wheels itself (the dev extra
    brings a setuptools that can), else with pip's isolated build (which fetches setuptools from the index)."""
    offline = ["--no-build-isolation", "--no-index"] if builds_wheels_offline() else []
    sources = [str(s) for s in (source if isinstance(source, list) else [source])]
    args = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *offline, "--disable-pip-version-check",
            "--target", str(target), *sources]
    out = run(args, target.parent, None, PIP_ROOT_USER_ACTION="ignore")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """ROOT with ROOT/site (the installed plugin) and ROOT/src (a copy of its source, tests included)."""
    root = tmp_path_factory.mktemp("sngan")
    src = root / "src"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".*cache"))
    pip_install(src, root / "site")
    assert (root / "site" / "gantool_sngan" / "resnet.py").exists()
    return root


@pytest.fixture(scope="module")
def trained(installed) -> Path:
    """A 4-step resnet-sn + hinge + projection run on the embedded digits (16x16)."""
    out = gantool(*TRAIN, cwd=installed, site=installed / "site")
    assert out.returncode == 0, out.stderr
    assert "resnet-sn + hinge + projection on digits (1, 16, 16)" in out.stderr
    return installed / "run"


def test_list_and_plugins_show_the_installed_plugin(installed):
    listing = gantool("list", "archs", "--json", cwd=installed, site=installed / "site")
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["resnet-sn"]["distribution"] == "gantool-sngan" and rows["dcgan"]["distribution"] == "gantoolkit"
    plugins = json.loads(gantool("plugins", "--json", cwd=installed, site=installed / "site").stdout)
    sngan = next(p for p in plugins if p["name"] == "sngan")
    assert (sngan["distribution"], sngan["version"], sngan["errors"]) == ("gantool-sngan", "0.1.0", [])
    assert {"resnet-sn", "hinge", "projection", "sngan-digits", "sngan"} == {r["name"] for r in sngan["registered"]}


def test_help_lists_the_plugin_command_without_importing_torch(installed):
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom gantoolkit.cli import build_app\n"
            "r = CliRunner().invoke(build_app(), ['--help'])\nassert r.exit_code == 0, r.output\n"
            "print('sngan' in r.stdout, 'torch' in sys.modules)\n")
    out = run([sys.executable, "-c", code], installed, installed / "site")
    assert out.stdout.split() == ["True", "False"], out.stderr


def test_train_sample_info_and_the_plugin_command(trained, installed):
    site = installed / "site"
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == [
        "step-00000002.safetensors", "step-00000004.safetensors"]
    out = gantool("sample", "run", "--n", "20", "--class", "7", "--out", "sevens.npz", cwd=installed, site=site)
    assert out.returncode == 0, out.stderr
    arrays = np.load(installed / "sevens.npz")
    assert arrays["images"].shape == (20, 1, 16, 16) and set(arrays["labels"]) == {7}
    components = load_checkpoint(trained / "checkpoints" / "step-00000004.safetensors").components
    assert components["arch"] == {"name": "resnet-sn", "plugin": "sngan", "distribution": "gantool-sngan",
                                  "version": "0.1.0"}
    assert components["loss"]["distribution"] == components["cond"]["distribution"] == "gantool-sngan"
    sigma = gantool("sngan", "sigma", "run", cwd=installed, site=site)
    assert sigma.returncode == 0, sigma.stderr
    rows = [line.split() for line in sigma.stdout.splitlines()[1:]]
    assert {r[0] for r in rows} >= {"body.linear", "cond_module"}
    assert all(abs(float(r[2]) - 1) < 0.1 for r in rows)  # normalised weights: spectral norm about 1


def test_the_plugins_own_tests_pass_against_the_installed_copy(installed):
    out = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], installed / "src",
              installed / "site")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout


def test_without_the_plugin_its_checkpoint_says_what_to_install(trained, installed):
    for args in (["sample", "run", "--n", "4", "--out", "x.png"], ["train", "--resume", "run", "--steps", "6"]):
        out = gantool(*args, cwd=installed, site=None)
        assert out.returncode == 2
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
        assert ("needs arch 'resnet-sn'; the checkpoint says it was made with the plugin distribution "
                "gantool-sngan 0.1.0") in lines[0]
        assert "pip install gantool-sngan)" in lines[0]
    info = gantool("info", "run", cwd=installed, site=None)  # reading the description needs no plugin
    assert info.returncode == 0 and "gantool-sngan 0.1.0" in info.stdout


def test_disabling_the_plugin_by_name(installed):
    site = installed / "site"
    for name in ("sngan", "gantool-sngan"):
        listing = gantool("list", "archs", "--json", cwd=installed, site=site, GANTOOL_DISABLE_PLUGINS=name)
        assert "resnet-sn" not in {r["name"] for r in json.loads(listing.stdout)}
    plugins = json.loads(gantool("plugins", "--json", cwd=installed, site=site, GANTOOL_DISABLE_PLUGINS="sngan").stdout)
    assert next(p for p in plugins if p["name"] == "sngan")["disabled"]
