"""Shared fixtures: hermetic plugin loading, tiny configurations, and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Only the built-ins unless a test installs plugins itself: the suite must not depend on what is installed.
os.environ.setdefault("GANTOOL_DISABLE_PLUGIN_AUTOLOAD", "1")

#: a DCGAN small enough to train a few steps in well under a second
TINY_DCGAN = ["--arch", "dcgan", "--arch-opt", "ngf=8", "--arch-opt", "ndf=8", "--batch-size", "16",
              "--latent-dim", "16"]


def quick_lane(config: pytest.Config) -> bool:
    """Whether this run leaves out the tests that start processes (`nox -s quick`, `pytest -m "not process"`)."""
    return "not process" in (config.option.markexpr or "")


@pytest.fixture(autouse=True)
def no_processes_in_the_quick_lane(request, monkeypatch):
    """In the quick lane, a test that starts a process without `@pytest.mark.process` is skipped when it tries,
    naming itself, so the lane stays fast and says what it left out; the full run (`nox`) runs it."""
    if not quick_lane(request.config) or request.node.get_closest_marker("process"):
        return
    import multiprocessing.process
    import subprocess

    def refuse(*args, **kwargs):
        pytest.skip(f"{request.node.nodeid} starts a process: mark it @pytest.mark.process")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)


@pytest.fixture(autouse=True, scope="session")
def caches_in_a_temporary_folder(tmp_path_factory):
    """The suite never writes to the user's caches: folder datasets' decoded images (GANTOOL_DATA_CACHE) and the
    automatic feature classifiers (GANTOOL_CACHE) go to temporary folders, shared within a test worker (tests that
    look at a cache point the variable at their own)."""
    saved = {name: os.environ.get(name) for name in ("GANTOOL_DATA_CACHE", "GANTOOL_CACHE")}
    os.environ["GANTOOL_DATA_CACHE"] = str(tmp_path_factory.mktemp("image-cache"))
    os.environ["GANTOOL_CACHE"] = str(tmp_path_factory.mktemp("classifier-cache"))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True, scope="session")
def matplotlib_font_cache_built_before_any_test():
    """matplotlib builds its font cache on its first import by running `fc-list`; on a fresh machine that would
    happen inside whichever test imports it first, and the quick lane would skip that test for starting a process."""
    import matplotlib.font_manager  # noqa: F401


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test sees a registry built from the current environment."""
    from gantoolkit.registry import reset_registry

    monkeypatch.setenv("GANTOOL_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("GANTOOL_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("GANTOOL_DISABLE_PLUGINS", raising=False)
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (two threads on a busy 2-core machine can be many times slower).

    Modules of tiny training runs use it for every test: `pytestmark = pytest.mark.usefixtures("one_thread")`.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_once(*args: str) -> None:
    """`gantool train ARGS...` in-process on one thread, for fixtures that train once per module or session."""
    import torch
    from typer.testing import CliRunner

    from gantoolkit.cli import build_app
    from gantoolkit.registry import reset_registry

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reset_registry()
        result = CliRunner().invoke(build_app(), ["train", *map(str, args)])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run `gantool ARGS...` in-process with Typer's CliRunner, in a temporary working directory."""
    from typer.testing import CliRunner

    from gantoolkit.cli import build_app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(build_app(), [str(a) for a in args])

    return run


@pytest.fixture
def tiny_run(cli, tmp_path) -> Path:
    """A finished 6-step conditional run on digits (8x8) with a checkpoint every 3 steps."""
    result = cli("train", *TINY_DCGAN, "--loss", "bce", "--cond", "onehot", "--image-size", "8", "--steps", "6",
                 "--checkpoint-every", "3", "--sample-every", "3", "--log-every", "3", "--out", "run")
    assert result.exit_code == 0, result.output
    return tmp_path / "run"
