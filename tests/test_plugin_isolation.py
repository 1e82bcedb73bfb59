"""Broken, clashing, disabled and command-contributing plugins, as real distributions: a `*.dist-info` folder with
METADATA and entry_points.txt beside the plugin's module, found by importlib.metadata on sys.path (in-process) or
PYTHONPATH (for `python -m gantoolkit` subprocesses)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import TINY_DCGAN

_ids = itertools.count()

LOSS_MODULE = """
import gantoolkit


@gantoolkit.hookimpl
def register_losses(register):
    register({name!r}, "gantoolkit.builtin.losses.bce:BCE", summary="a loss")
"""


def make_dist(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str], version: str = "1.0"):
    """Write modules and a dist-info folder that declares `entry_points` (name -> module) in the gantoolkit group."""
    root.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {module}\n" for name, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[gantoolkit]\n{lines}")


@pytest.fixture
def plugins_dir(tmp_path, monkeypatch):
    """A folder on sys.path for fake distributions, with plugin autoload switched back on."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("GANTOOL_DISABLE_PLUGIN_AUTOLOAD")
    yield root
    for name in [m for m in sys.modules if m.startswith("fakeplugin_")]:
        del sys.modules[name]


def unique(prefix: str = "fakeplugin") -> str:
    return f"{prefix}_{next(_ids)}_{os.getpid()}"


def plugin_records(cli) -> dict[str, dict]:
    """`gantool plugins --json`, by plugin name; it exits 1 exactly when some plugin failed."""
    result = cli("plugins", "--json")
    records = {p["name"]: p for p in json.loads(result.stdout)}
    assert result.exit_code == int(any(p["errors"] for p in records.values())), result.output
    return records


def gantool(args: list[str], site: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`python -m gantoolkit ARGS` with `site` on PYTHONPATH and plugin autoload on."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GANTOOL_")}
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), environ.get("PYTHONPATH", "")) if p)
    environ["OMP_NUM_THREADS"] = "1"
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "gantoolkit", *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=300)


def train_tiny(cli, *extra: str):
    return cli("train", *TINY_DCGAN, "--image-size", "8", "--steps", "1", *extra)


# -- a plugin that raises on import -------------------------------------------------------------------------------


@pytest.fixture
def broken_site(plugins_dir) -> tuple[Path, str]:
    module = unique()
    make_dist(plugins_dir, "gantool-broken", {module: "raise RuntimeError('kaboom at import')\n"}, {"broken": module})
    return plugins_dir, module


def test_broken_plugin_is_reported_and_everything_else_works(cli, broken_site):
    assert cli("--help").exit_code == 0
    result = train_tiny(cli, "--out", "run")
    assert result.exit_code == 0, result.output
    record = plugin_records(cli)["broken"]
    assert (record["distribution"], record["version"]) == ("gantool-broken", "1.0")
    assert record["errors"] == [f"failed to import {broken_site[1]}: RuntimeError: kaboom at import"]
    table = cli("plugins").stdout
    assert "gantool-broken" in table and "kaboom" in table


@pytest.mark.process
def test_broken_plugin_through_the_real_cli_and_strict_mode(broken_site, tmp_path):
    site, _ = broken_site
    ok = gantool(["--help"], site, tmp_path)
    assert ok.returncode == 0 and "train" in ok.stdout, ok.stderr
    listing = gantool(["list", "losses", "--json"], site, tmp_path)
    assert listing.returncode == 0 and "wgan-gp" in listing.stdout
    for args in (["--help"], ["train", "--steps", "1"], ["list"]):
        strict = gantool(args, site, tmp_path, GANTOOL_STRICT_PLUGINS="1")
        assert strict.returncode == 2, strict.stdout
        lines = strict.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: plugin 'broken' (distribution gantool-broken)")
        assert "kaboom at import" in lines[0] and "unset GANTOOL_STRICT_PLUGINS" in lines[0]


def test_plugin_that_exits_on_import_or_in_a_hook_does_not_end_the_tool(cli, plugins_dir):
    exits, hook = unique(), unique()
    make_dist(plugins_dir, "gantool-exits", {exits: "import sys\nsys.exit(3)\n"}, {"exits": exits})
    make_dist(plugins_dir, "gantool-hook-exits", {hook: """
        import sys
        import gantoolkit

        @gantoolkit.hookimpl
        def register_losses(register):
            sys.exit("bye")

        @gantoolkit.hookimpl
        def register_conditionings(register):
            register("still-here", "gantoolkit.builtin.conditionings.onehot:OneHot")
        """}, {"hook-exits": hook})
    records = plugin_records(cli)
    assert "SystemExit" in records["exits"]["errors"][0]
    assert records["hook-exits"]["errors"] == ["register_losses raised SystemExit: bye"]
    assert "still-here" in cli("list", "conds").stdout


def test_a_hook_that_raises_is_isolated(cli, plugins_dir):
    module = unique()
    make_dist(plugins_dir, "gantool-half", {module: """
        import gantoolkit

        @gantoolkit.hookimpl
        def register_losses(register):
            raise ValueError("no losses today")

        @gantoolkit.hookimpl
        def register_architectures(register):
            register("half-mlp", "gantoolkit.builtin.archs.mlp:MLP")
        """}, {"half": module})
    record = plugin_records(cli)["half"]
    assert record["errors"] == ["register_losses raised ValueError: no losses today"]
    assert [r["name"] for r in record["registered"]] == ["half-mlp"]
    assert train_tiny(cli, "--loss", "wgan", "--out", "run").exit_code == 0


def test_a_hook_raising_plugin_error_does_not_end_help_and_a_hook_without_parameters_loads(cli, plugins_dir):
    module = unique()
    make_dist(plugins_dir, "gantool-picky", {module: """
        import gantoolkit
        from gantoolkit.errors import PluginError

        @gantoolkit.hookimpl
        def register_losses(register):
            raise PluginError("needs a GPU licence")

        @gantoolkit.hookimpl
        def register_metrics():
            pass
        """}, {"picky": module})
    help_ = cli("--help")
    assert help_.exit_code == 0 and "train" in help_.stdout
    assert plugin_records(cli)["picky"]["errors"] == ["register_losses raised PluginError: needs a GPU licence"]


def test_a_misspelt_hook_is_reported(cli, plugins_dir):
    module = unique()
    make_dist(plugins_dir, "gantool-typo", {module: """
        import gantoolkit

        @gantoolkit.hookimpl
        def register_loss(register):
            register("never", "x:y")
        """}, {"typo": module})
    (error,) = plugin_records(cli)["typo"]["errors"]
    assert "'register_loss', which is not a gantoolkit hook" in error and "did you mean 'register_losses'" in error


# -- clashing names -------------------------------------------------------------------------------------------------


def test_two_plugins_with_one_name_name_each_other(cli, plugins_dir):
    first, second = unique(), unique()
    make_dist(plugins_dir, "gantool-lsq-one", {first: LOSS_MODULE.format(name="lsq")}, {"lsq-one": first})
    make_dist(plugins_dir, "gantool-lsq-two", {second: LOSS_MODULE.format(name="lsq")}, {"lsq-two": second})
    records = plugin_records(cli)
    for name, other in (("lsq-one", "gantool-lsq-two"), ("lsq-two", "gantool-lsq-one")):
        (error,) = records[name]["errors"]  # whichever loaded first, each record names the other distribution
        assert f"(distribution {other})" in error and "'lsq'" in error
    result = train_tiny(cli, "--loss", "lsq")
    assert result.exit_code == 2
    assert "gantool-lsq-one" in result.stderr and "gantool-lsq-two" in result.stderr
    assert "GANTOOL_DISABLE_PLUGINS" in result.stderr
    assert train_tiny(cli, "--loss", "bce", "--out", "run").exit_code == 0  # everything else keeps working


def test_a_plugin_cannot_hijack_a_built_in_name(cli, plugins_dir, tiny_run, tmp_path):
    """`tiny_run` is a bce checkpoint made before the plugin was installed; it and new bce runs keep working."""
    from gantoolkit.registry import reset_registry

    module = unique()
    make_dist(plugins_dir, "gantool-copycat", {module: LOSS_MODULE.format(name="bce").replace(
        "gantoolkit.builtin.losses.bce:BCE", "gantoolkit.builtin.losses.wasserstein:WGAN")}, {"copycat": module})
    reset_registry()
    result = train_tiny(cli, "--loss", "bce", "--out", "after")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "gantool-copycat" in warnings[0] and "'bce'" in warnings[0]
    info = json.loads(cli("info", "after", "--json").stdout)
    assert info["components"]["loss"]["distribution"] == "gantoolkit"
    sample = cli("sample", str(tiny_run), "--n", "4", "--out", "grid.png")
    assert sample.exit_code == 0, sample.output
    assert (tmp_path / "grid.png").exists()
    records = plugin_records(cli)  # exits 1: a plugin failed
    (error,) = records["copycat"]["errors"]
    assert "loss name 'bce' is built in" in error and records["copycat"]["registered"] == []
    assert cli("plugins").exit_code == 1 and "is built in" in cli("plugins").stdout


def test_a_clash_between_two_plugins_says_how_to_choose_one(cli, plugins_dir, monkeypatch):
    first, second = unique(), unique()
    make_dist(plugins_dir, "gantool-lsq-one", {first: LOSS_MODULE.format(name="lsq")}, {"lsq-one": first})
    make_dist(plugins_dir, "gantool-lsq-two", {second: LOSS_MODULE.format(name="lsq")}, {"lsq-two": second})
    result = train_tiny(cli, "--loss", "lsq")
    assert result.exit_code == 2
    skip = result.stderr.split("GANTOOL_DISABLE_PLUGINS=")[1].split()[0]
    assert skip in ("lsq-one", "lsq-two")
    monkeypatch.setenv("GANTOOL_DISABLE_PLUGINS", skip)
    from gantoolkit.registry import reset_registry

    reset_registry()
    assert train_tiny(cli, "--loss", "lsq", "--out", "run").exit_code == 0


def test_disable_by_entry_point_or_distribution_name(cli, plugins_dir, monkeypatch):
    first, second = unique(), unique()
    make_dist(plugins_dir, "gantool-lsq-one", {first: LOSS_MODULE.format(name="lsq")}, {"lsq-one": first})
    make_dist(plugins_dir, "gantool-lsq-two", {second: LOSS_MODULE.format(name="lsq")}, {"lsq-two": second})
    for disabled in ("lsq-two", "gantool-lsq-two"):
        monkeypatch.setenv("GANTOOL_DISABLE_PLUGINS", f"something-else,{disabled}")
        from gantoolkit.registry import reset_registry

        reset_registry()
        records = plugin_records(cli)
        assert records["lsq-one"]["errors"] == [] and records["lsq-two"]["disabled"]
        assert "disabled" in cli("plugins").stdout
        assert train_tiny(cli, "--loss", "lsq", "--out", f"run-{disabled}").exit_code == 0
    monkeypatch.setenv("GANTOOL_DISABLE_PLUGINS", "lsq-one,gantool-lsq-two")
    from gantoolkit.registry import reset_registry

    reset_registry()
    result = train_tiny(cli, "--loss", "lsq")
    assert result.exit_code == 2 and "plugin(s) lsq-one, lsq-two skipped by GANTOOL_DISABLE_PLUGINS" in result.stderr


def test_unknown_name_hints_at_failed_plugins(cli, broken_site):
    result = train_tiny(cli, "--loss", "its-loss")
    assert result.exit_code == 2
    assert "unknown loss 'its-loss'" in result.stderr and "plugin(s) broken failed to load" in result.stderr


def test_lazy_factory_that_does_not_import_fails_only_when_used(cli, plugins_dir):
    module = unique()
    make_dist(plugins_dir, "gantool-ghost", {module: LOSS_MODULE.format(name="ghost").replace(
        "gantoolkit.builtin.losses.bce:BCE", "gantool_ghost_missing.loss:Ghost")}, {"ghost": module})
    assert "ghost" in cli("list", "losses").stdout
    result = train_tiny(cli, "--loss", "ghost")
    assert result.exit_code == 2 and "cannot be imported" in result.stderr and "Traceback" not in result.output


# -- plugin commands ------------------------------------------------------------------------------------------------

COMMANDS = """
import gantoolkit
import typer

greet = typer.Typer(help="Greetings.")


@greet.command()
def hello(name: str = "world") -> None:
    \"\"\"Say hello.\"\"\"
    typer.echo(f"hello {name}")


def shout(text: str) -> None:
    \"\"\"Shout TEXT.\"\"\"
    typer.echo(text.upper())


def sample() -> None:
    typer.echo("hijacked")


@gantoolkit.hookimpl
def register_commands(register):
    register("greet", greet, summary="greetings from a plugin")
    register("shout", shout, summary="shout", panel="Fun")
    register("sample", sample, summary="tries to replace a core command")
"""


def test_plugin_commands_mount_and_may_not_take_core_names(cli, plugins_dir):
    module = unique()
    make_dist(plugins_dir, "gantool-commands", {module: COMMANDS}, {"commands": module})
    top = cli("--help").stdout
    assert "greet" in top and "shout" in top and "Fun" in top
    assert cli("greet", "hello", "--name", "gan").stdout.strip() == "hello gan"
    assert cli("shout", "hi").stdout.strip() == "HI"
    assert "hijacked" not in cli("sample", "--help").stdout
    assert "Generate samples from a checkpoint" in cli("sample", "--help").stdout
    errors = plugin_records(cli)["commands"]["errors"]
    assert errors == ["command 'sample' is a core command and cannot be replaced"]


@pytest.mark.process
def test_plugin_command_through_the_real_cli(plugins_dir, tmp_path):
    module = unique()
    make_dist(plugins_dir, "gantool-commands", {module: COMMANDS}, {"commands": module})
    out = gantool(["greet", "hello"], plugins_dir, tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "hello world", out.stderr
    strict = gantool(["greet", "hello"], plugins_dir, tmp_path, GANTOOL_STRICT_PLUGINS="1")
    assert strict.returncode == 2 and "core command" in strict.stderr


def test_a_plugin_cannot_take_a_built_in_plugin_command(cli, plugins_dir):
    from gantoolkit.registry import Registry

    builtin = [s for s in Registry.load().list("command") if s.distribution == "gantoolkit"]
    if not builtin:
        pytest.skip("no built-in plugin commands in this version")
    name = builtin[0].name
    module = unique()
    make_dist(plugins_dir, "gantool-usurper", {module: f"""
        import gantoolkit

        def usurp() -> None:
            print("usurped")

        @gantoolkit.hookimpl
        def register_commands(register):
            register({name!r}, usurp)
        """}, {"usurper": module})
    assert cli(name, "--help").exit_code == 0 and "usurped" not in cli(name, "--help").stdout
    (error,) = plugin_records(cli)["usurper"]["errors"]
    assert f"command name {name!r} is built in" in error and "ignored" in error
