"""docs/plugins.md cannot rot: its complete loss plugin is extracted, pip-installed and used through the CLI (and its
own tests run), and every other example is loaded as a plugin and passes the conformance kit."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import sys
from pathlib import Path

import pytest
import torch

from gantoolkit.kinds import hook_names
from gantoolkit.testing import (
    RULES,
    check_architecture,
    check_command,
    check_conditioning,
    check_config,
    check_controller,
    check_dataset,
    check_direction_finder,
    check_loss,
    check_plugin,
    check_registered,
    check_sampler,
    plugin_registry,
    tiny_dataset,
)
from tests.test_plugin_sngan import gantool, pip_install, run

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
#: a fenced block whose first line names the file it is, e.g. "# gantool-lsgan/pyproject.toml"
BLOCK = re.compile(r"```(?:python|toml)\n# (?P<path>[\w./-]+\.(?:py|toml))\n(?P<body>.*?)```", re.S)
_ids = itertools.count()


def guide_files() -> dict[str, str]:
    return {m["path"]: m["body"] for m in BLOCK.finditer(GUIDE.read_text())}


def load_example(path: str):
    """An example file from the guide, imported as a fresh module."""
    name = f"guide_example_{Path(path).stem}_{next(_ids)}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(guide_files()[path], path, "exec"), module.__dict__)
    sys.modules[name] = module
    return module


def test_the_guide_documents_every_hook_and_every_rule_and_is_linked():
    text = GUIDE.read_text()
    assert all(f"`{hook}`" in text for hook in hook_names())
    rules_table = text.split("| rule | meaning |")[1].split("\n\n")[0]
    assert re.findall(r"^\| `([\w-]+)` \|", rules_table, re.M) == list(RULES)  # each rule, in the kit's order
    assert "docs/plugins.md" in (ROOT / "README.md").read_text()


def test_the_complete_loss_plugin_is_under_40_lines():
    files = guide_files()
    lines = files["gantool-lsgan/gantool_lsgan.py"].splitlines() + files["gantool-lsgan/pyproject.toml"].splitlines()
    assert len(lines) < 40


#: the guide's other complete examples, each packaged by the tests as its own distribution
EXAMPLES = ("my_arch", "my_r1", "my_ragan", "my_cond", "my_controller", "my_finder", "my_data", "my_metric",
            "my_sampler", "my_command")
PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
dependencies = ["gantoolkit"]

[project.entry-points.gantoolkit]
{stem} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
"""


def example_distribution(stem: str) -> str:
    return f"gantool-guide-{stem.replace('_', '-')}"


def test_every_example_file_of_the_guide_is_packaged_by_these_tests():
    examples = {Path(p).stem for p in guide_files() if p.startswith("examples/")}
    assert examples == set(EXAMPLES)


@pytest.fixture(scope="module")
def guide_site(tmp_path_factory) -> Path:
    """ROOT/site: the guide's gantool-lsgan as written, and each example as its own distribution
    (gantool-guide-my-arch, ...), all pip-installed from source in one go."""
    root = tmp_path_factory.mktemp("guide")
    files = guide_files()
    for path, body in files.items():
        if path.startswith("gantool-lsgan/"):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(body)
    sources = [root / "gantool-lsgan"]
    for stem in EXAMPLES:
        dist, module = example_distribution(stem), f"gantool_guide_{stem}"
        (root / dist).mkdir()
        (root / dist / f"{module}.py").write_text(files[f"examples/{stem}.py"])
        (root / dist / "pyproject.toml").write_text(PYPROJECT.format(dist=dist, stem=stem, module=module))
        sources.append(root / dist)
    pip_install(sources, root / "site")
    return root


@pytest.mark.process
@pytest.mark.parametrize("stem", EXAMPLES)
def test_each_packaged_example_passes_check_plugin(guide_site, stem, monkeypatch):
    """check_plugin(dist) is check_plugin(dist, components=False) and then check_registered; here none may skip."""
    monkeypatch.syspath_prepend(str(guide_site / "site"))
    dist = example_distribution(stem)
    registry = check_plugin(dist, components=False)
    results = check_registered(registry=registry, distribution=dist)
    assert results and all(r.status == "passed" for r in results), results
    assert {(r.kind, r.name) for r in results} == set(registry.host.records[stem].registered)


@pytest.fixture(scope="module")
def lsgan(guide_site) -> Path:
    """The guide's gantool-lsgan, installed in ROOT/site, and ROOT/run: two steps of a conditional DCGAN trained
    with it through the CLI (with one of its options)."""
    root = guide_site
    train = gantool("train", "--loss", "lsgan-targets", "--loss-opt", "real=0.9", "--cond", "onehot",
                    "--image-size", "8", "--arch-opt", "ngf=8", "--arch-opt", "ndf=8", "--latent-dim", "8",
                    "--batch-size", "16", "--steps", "2", "--out", "run", cwd=root, site=root / "site")
    assert train.returncode == 0, train.stderr
    return root


@pytest.mark.process
def test_the_guides_loss_plugin_installs_trains_and_passes_its_own_tests(lsgan):
    site = lsgan / "site"
    listing = json.loads(gantool("list", "losses", "--json", cwd=lsgan, site=site).stdout)
    assert {"name": "lsgan-targets", "distribution": "gantool-lsgan"}.items() <= next(
        r for r in listing if r["name"] == "lsgan-targets").items()
    assert (lsgan / "run" / "checkpoints" / "step-00000002.safetensors").exists()
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], lsgan / "gantool-lsgan",
                site)
    assert tests.returncode == 0 and "2 passed" in tests.stdout, tests.stdout[-3000:] + tests.stderr[-2000:]
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom gantoolkit.cli import build_app\n"
            "assert CliRunner().invoke(build_app(), ['--help']).exit_code == 0\nprint('torch' in sys.modules)\n")
    only_lsgan = {"GANTOOL_DISABLE_PLUGINS": ",".join(EXAMPLES)}  # the examples import torch at module level
    assert run([sys.executable, "-c", code], lsgan, site, **only_lsgan).stdout.strip() == "False"


@pytest.mark.parametrize(
    "path, check, name, kwargs",
    [
        ("examples/my_arch.py", check_architecture, "conv-lite", {"options": {"width": 8}}),
        ("examples/my_r1.py", check_loss, "bce-r1", {}),
        ("examples/my_ragan.py", check_loss, "ragan", {}),
        ("examples/my_cond.py", check_conditioning, "embed-lite", {}),
        ("examples/my_controller.py", check_controller, "code-regression", {"options": {"weight": "0.5"}}),
        ("examples/my_data.py", check_dataset, "spiral", {"argument": "2", "options": {"n": "512"}}),
        ("examples/my_sampler.py", check_sampler, "antithetic", {}),
        ("examples/my_finder.py", check_direction_finder, "brighter", {"options": {"samples": "64"}}),
    ],
)
def test_each_example_passes_the_conformance_kit(path, check, name, kwargs):
    check(name, registry=plugin_registry(load_example(path)), **kwargs)


def test_the_preset_example_names_registered_components():
    check_config("spiral-wgan-gp", registry=plugin_registry(load_example("examples/my_data.py")))


@pytest.mark.process
def test_the_command_example_mounts_and_runs(lsgan):
    from typer.testing import CliRunner

    from gantoolkit.cli import build_app
    from gantoolkit.registry import use_registry

    registry = plugin_registry(load_example("examples/my_command.py"))
    check_command("peek", registry=registry)
    with use_registry(registry):
        result = CliRunner().invoke(build_app(), ["peek", "params", str(lsgan / "run")])
    assert result.exit_code == 0, result.output
    counts = dict(line.split(": ") for line in result.stdout.strip().splitlines())
    assert set(counts) == {"generator", "critic"} and all(int(v.replace(",", "")) > 0 for v in counts.values())


def test_the_metric_example_computes_its_key():
    evaluation = pytest.importorskip("gantoolkit.evaluation")
    registry = plugin_registry(load_example("examples/my_metric.py"))
    metric = registry.create("metric", "mean-gap")
    real = tiny_dataset((2,), n=64)
    ctx = evaluation.EvalContext(real, lambda n, seed: (torch.zeros(n, 2), None), n=64)
    assert metric.why_not(ctx) is None
    values = metric.compute(ctx)
    expected = real.data.mean(0).norm().item()  # the samples are all at the origin
    assert set(values) == set(metric.keys) and values["mean_gap"] == pytest.approx(expected, rel=1e-5)


def test_the_sampler_example_is_a_sampler_name_of_gantool_sample(cli):
    import numpy as np

    from gantoolkit.registry import use_registry

    with use_registry(plugin_registry(load_example("examples/my_sampler.py"))):
        assert "antithetic" in cli("list", "samplers").stdout
        train = cli("train", "--arch", "mlp", "--arch-opt", "hidden_dim=16", "--data", "toy:ring", "--data-opt",
                    "n=256", "--latent-dim", "4", "--batch-size", "16", "--steps", "1", "--out", "run")
        assert train.exit_code == 0, train.output
        for out in ("a.npz", "b.npz"):
            result = cli("sample", "run", "--sampler", "antithetic", "--n", "6", "--seed", "2", "--out", out)
            assert result.exit_code == 0, result.output
        report = cli("evaluate", "run", "--sampler", "antithetic", "--metrics", "modes", "--n", "64", "--out", "r.json")
        assert report.exit_code == 0, report.output
    a, b = np.load("a.npz")["points"], np.load("b.npz")["points"]
    assert a.shape == (6, 2) and (a == b).all()
    assert json.loads(Path("r.json").read_text())["meta"]["sampler"] == "antithetic (latent pairs z and -z)"


def test_a_direction_finder_written_from_the_guide_finds_a_direction_gantool_sample_moves_along(cli):
    import numpy as np

    from gantoolkit.registry import use_registry

    with use_registry(plugin_registry(load_example("examples/my_finder.py"))):
        assert "brighter" in cli("list", "finders").stdout
        train = cli("train", "--arch", "dcgan", "--arch-opt", "ngf=8", "--arch-opt", "ndf=8", "--image-size", "8",
                    "--cond", "onehot", "--latent-dim", "8", "--batch-size", "16", "--steps", "2", "--out", "run")
        assert train.exit_code == 0, train.output
        found = cli("directions", "run", "--method", "brighter", "--opt", "samples=64", "--out", "d.safetensors")
        assert found.exit_code == 0 and "1 brighter directions (brighter)" in found.output, found.output
        moved = cli("sample", "run", "--direction", "d.safetensors:brighter", "--alphas", "-3,3", "--steps", "2",
                    "--n", "8", "--out", "strip.npz")
        assert moved.exit_code == 0, moved.output
    images = np.load("strip.npz")["images"].reshape(8, 2, -1).astype(float)
    assert (images[:, 1].mean(1) > images[:, 0].mean(1)).all()  # every sample is brighter at +3 than at -3
