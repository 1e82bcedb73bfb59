"""The Python API (gantoolkit/api.py): the README's block as written, and samples equal to `gantool sample`'s."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import gantoolkit
from gantoolkit.cli import build_app
from gantoolkit.errors import ConfigError
from tests.conftest import TINY_DCGAN, train_once

pytestmark = pytest.mark.usefixtures("one_thread")

README = Path(__file__).resolve().parents[1] / "README.md"
RUN = "runs/digits-dcgan-wgan-gp-onehot"  # the run the README's block loads


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder holding a tiny conditional run where the README's block looks for it."""
    root = tmp_path_factory.mktemp("api")
    train_once(*TINY_DCGAN, "--loss", "wgan-gp", "--cond", "onehot", "--image-size", "8", "--steps", "2",
               "--ema", "0.9", "--out", root / RUN)
    return root


@pytest.fixture
def model(workdir):
    return gantoolkit.load_generator(workdir / RUN)


def readme_block() -> str:
    section = README.read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Python API section shows one code block"
    return blocks[0]


def test_the_readme_block_runs_as_written(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    scope: dict = {}
    exec(compile(readme_block(), "README.md (Python API)", "exec"), scope)
    assert scope["images"].shape == (20, 1, 8, 8) and scope["images"].dtype == torch.uint8
    assert (workdir / "sevens.png").stat().st_size > 0
    assert scope["mixed"].shape == (8, 1, 8, 8) and scope["strip"].shape == (8, 1, 8, 8)
    assert scope["edits"].shape == (6, 1, 8, 8)
    assert scope["run"] == Path("runs/ring-api") and (workdir / "runs/ring-api/checkpoints").is_dir()
    assert scope["points"].shape == (500, 2) and scope["points"].dtype == torch.float32


def sample_npz(workdir: Path, *args: str) -> dict[str, np.ndarray]:
    out = workdir / f"s{os.getpid()}-{abs(hash(args))}.npz"
    result = CliRunner().invoke(build_app(), ["sample", str(workdir / RUN), *args, "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    with np.load(out) as arrays:
        return dict(arrays)


@pytest.mark.parametrize("extra", [(), ("--class", "7"), ("--truncation", "0.5", "--seed", "4")])
def test_sample_equals_gantool_sample(workdir, model, extra):
    args = ["--n", "12", *extra]
    if "--seed" not in extra:
        args += ["--seed", "3"]
    arrays = sample_npz(workdir, *args)
    seed = int(args[args.index("--seed") + 1])
    classes = "7" if "--class" in extra else None
    truncation = 0.5 if "--truncation" in extra else None
    images = model.sample(12, classes=classes, seed=seed, truncation=truncation)
    assert np.array_equal(images.numpy(), arrays["images"])


def test_render_latents_interpolate_and_edit(model):
    z = model.latents(4, seed=5)
    assert torch.equal(z, model.latents(4, seed=5)) and z.shape == (4, model.latent_dim)
    assert torch.equal(model.render(z), model.sample(4, seed=5))  # the same latents, labels and codes
    path = model.interpolate(1, 2, steps=5)
    assert torch.equal(path[0], model.latents(1, 1)[0]) and torch.equal(path[-1], model.latents(1, 2)[0])
    per_sample = model.render(z, classes=[3, 3, "3", 3])
    assert torch.equal(per_sample, model.render(z, classes=3))
    directions = model.directions("sefa")
    edits = model.edit(z, directions, directions.names[0], alpha=[0.0, 2.0])
    assert torch.equal(edits[0::2], model.render(z))  # alpha 0 leaves each sample as it was
    assert not torch.equal(edits[1::2], edits[0::2])
    assert model.classes == tuple(str(i) for i in range(10)) and model.shape == (1, 8, 8)


def test_pictures(model):
    images = model.sample(6, seed=0)
    pictures = model.to_pil(images)
    assert len(pictures) == 6 and np.array_equal(np.asarray(pictures[2]), images[2, 0].numpy())
    assert model.grid(images, nrow=3).size == (3 * 8 + 4 * 2, 2 * 8 + 3 * 2)  # 2-pixel padding around each


def test_bad_requests_are_one_line(model):
    with pytest.raises(ConfigError, match="3 classes for 4 samples"):
        model.render(model.latents(4), classes=[1, 2, 3])
    with pytest.raises(ConfigError, match="takes n×16"):
        model.render(torch.zeros(2, 5))
    with pytest.raises(ConfigError, match="unknown class"):
        model.sample(2, classes="seven")
    with pytest.raises(ConfigError, match="uint8 images"):
        model.grid(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ConfigError, match="no direction"):
        model.edit(model.latents(1), model.directions("sefa"), "nope")
