"""Seeing a run (issue 17): loggers (`--logger tensorboard`, plugins), `gantool plot`, `gantool report`, and what
training prints about where to look."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image

from gantoolkit import hookimpl
from gantoolkit.files.outputs import HTML, PNG, identify
from gantoolkit.loggers import Logger
from gantoolkit.registry import use_registry
from gantoolkit.testing import check_logger, plugin_registry
from tests.conftest import train_once

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--data", "digits", "--arch", "dcgan", "--arch-opt", "ngf=8", "--arch-opt", "ndf=8", "--image-size", "8",
        "--batch-size", "16", "--latent-dim", "16", "--log-every", "10", "--sample-every", "100",
        "--checkpoint-every", "100"]


def scalars(run: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return [e.step for e in accumulator.Scalars(tag)]


def images(run: Path) -> list[int]:
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(run / "tb"), size_guidance={"images": 0})
    accumulator.Reload()
    return [e.step for e in accumulator.Images("samples")]


def logged_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tb_run(tmp_path_factory) -> Path:
    """200 steps of tiny digits with --logger tensorboard."""
    run = tmp_path_factory.mktemp("tb") / "run"
    train_once(*TINY, "--steps", "200", "--logger", "tensorboard", "--out", run)
    return run


def test_tensorboard_reads_every_logged_step_and_the_sample_grids(tb_run):
    assert scalars(tb_run, "loss/loss_d") == list(range(10, 201, 10)) == logged_steps(tb_run)
    assert scalars(tb_run, "loss/loss_g") == list(range(10, 201, 10))
    assert scalars(tb_run, "lr/lr_g") and scalars(tb_run, "speed/it_per_s")
    assert images(tb_run) == [100, 200]


def test_a_resumed_run_continues_the_same_curves_without_duplicated_steps(tb_run, tmp_path, cli):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tb_run, run)
    (run / "checkpoints" / "step-00000200.safetensors").unlink()  # as if killed after logging steps 110..200
    result = cli("train", "--resume", run, "--steps", "300")  # a checkpoint chooses no logger: it is said how
    assert result.exit_code == 0, result.output
    assert "note: the run was also logged with --logger tensorboard; a checkpoint does not choose loggers" in \
        result.stderr and scalars(run, "loss/loss_d") == list(range(10, 201, 10))
    (run / "checkpoints" / "step-00000300.safetensors").unlink()
    result = cli("train", "--resume", run, "--steps", "300", "--logger", "tensorboard")
    assert result.exit_code == 0, result.output
    assert scalars(run, "loss/loss_d") == list(range(10, 301, 10)) == logged_steps(run)
    assert images(run) == [100, 200, 300]


def test_training_prints_where_to_look(tb_run, cli, tmp_path):
    result = cli("train", *TINY, "--steps", "20", "--logger", "tensorboard", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    watch = next(line for line in result.output.splitlines() if line.strip().startswith("watch:"))
    assert f"tensorboard --logdir {tmp_path / 'r' / 'tb'}" in watch and f"gantool plot {tmp_path / 'r'}" in watch
    lines = result.output.splitlines()
    nexts = lines[lines.index("next:") + 1:][:4]
    assert [line.split()[1] for line in nexts] == ["sample", "evaluate", "demo", "report"]


class Broken(Logger):
    def scalars(self, step, values):
        raise OSError(28, "No space left on device")


class Recording(Logger):
    seen: ClassVar[list[tuple[str, int]]] = []

    def start(self, run_dir, config, step):
        assert config["loggers"] == ["broken", "recording"] and "components" in config
        self.seen.append(("start", step))

    def scalars(self, step, values):
        assert {"loss_d", "loss_g", "lr_g", "lr_d", "it_per_s"} <= set(values)
        self.seen.append(("scalars", step))

    def image(self, step, name, png):
        assert name == f"step-{step:08d}.png" and png.startswith(b"\x89PNG")
        self.seen.append(("image", step))

    def close(self):
        self.seen.append(("close", -1))


def loggers_plugin() -> types.ModuleType:
    module = types.ModuleType("my_loggers")

    @hookimpl
    def register_loggers(register):
        register("broken", Broken, summary="fails")
        register("recording", Recording, summary="records")

    module.register_loggers = register_loggers  # type: ignore[attr-defined]
    return module


def test_a_failing_logger_is_reported_once_and_switched_off_while_training_goes_on(cli, tmp_path):
    Recording.seen.clear()
    with use_registry(plugin_registry(loggers_plugin())):
        result = cli("train", *TINY, "--steps", "100", "--logger", "broken,recording", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "logger 'broken' failed" in line]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert logged_steps(tmp_path / "r") == list(range(10, 101, 10))  # metrics.jsonl has everything
    assert Recording.seen[0] == ("start", 0) and Recording.seen[-1] == ("close", -1)
    assert [s for kind, s in Recording.seen if kind == "scalars"] == list(range(10, 101, 10))
    assert [s for kind, s in Recording.seen if kind == "image"] == [100]


def test_the_tensorboard_logger_passes_the_kit():
    check_logger("tensorboard")


def test_unknown_logger_names_the_closest_and_creates_nothing(cli, tmp_path):
    result = cli("train", *TINY, "--steps", "5", "--logger", "tensorbord", "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert "unknown logger 'tensorbord'" in result.output and "tensorboard" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "r").exists()


def test_missing_tensorboard_names_the_extra(cli, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as when it is not installed
    result = cli("train", *TINY, "--steps", "5", "--logger", "tensorboard", "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert "gantoolkit[tensorboard]" in result.output and not (tmp_path / "r").exists()


def test_list_loggers(cli):
    result = cli("list", "loggers")
    assert result.exit_code == 0 and "tensorboard" in result.output


# -- gantool plot -----------------------------------------------------------------------------------------------


def picture(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image.convert("RGB")


def test_plot_one_run_and_two_runs(tb_run, cli, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tb_run, other)
    lines = (other / "metrics.jsonl").read_text().splitlines()
    lines.insert(10, json.dumps({"step": 100, "event": "rollback", "bad_step": 104, "lr_g": 1e-4, "lr_d": 1e-4}))
    (other / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert cli("plot", tb_run, "--out", "one.png").exit_code == 0
    result = cli("plot", tb_run, other, "--out", "two.png")
    assert result.exit_code == 0, result.output
    one, two = picture(tmp_path / "one.png"), picture(tmp_path / "two.png")
    assert identify(tmp_path / "one.png")[0] == PNG and one.width >= 800 and one.height >= 400
    assert len(one.getcolors(1 << 20) or ()) > 50  # curves, text and axes: not a blank canvas
    assert one.size == two.size and one.tobytes() != two.tobytes()
    assert "wrote two.png (2 runs)" in result.output


def test_plot_refuses_a_run_without_metrics(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("plot", tmp_path / "empty", "--out", "c.png")
    assert result.exit_code == 2 and "has no metrics" in result.output and not (tmp_path / "c.png").exists()
    assert len(result.output.strip().splitlines()) == 1


def test_plot_skips_a_corrupt_line_and_names_it(tb_run, cli, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tb_run, run)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[2] = lines[2][:15]  # a line cut short
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    result = cli("plot", run, "--out", "c.png")
    assert result.exit_code == 0, result.output
    assert f"warning: {run / 'metrics.jsonl'} line 3 is not a metrics record; skipped" in result.output
    assert identify(tmp_path / "c.png")[0] == PNG


def test_out_onto_a_file_of_another_kind_is_refused(tb_run, cli, tmp_path):
    (tmp_path / "notes.png").write_text("my notes")
    (tmp_path / "page.html").write_text("<!DOCTYPE html><p>mine</p>")
    for args in (("plot", tb_run, "--out", "notes.png"), ("report", tb_run, "--out", "page.html")):
        result = cli(*args)
        assert result.exit_code == 2 and "already exists and is" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert (tmp_path / "notes.png").read_text() == "my notes"
    assert (tmp_path / "page.html").read_text() == "<!DOCTYPE html><p>mine</p>"
    assert cli("report", tb_run, "--out", "r.html").exit_code == 0
    assert cli("report", tb_run, "--out", "r.html").exit_code == 0  # its own kind is replaced
    assert cli("report", tb_run, "--out", "r.png").exit_code == 2
    assert identify(tmp_path / "r.html")[0] == HTML


# -- gantool report ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_page(tb_run, tmp_path_factory) -> Path:
    """The report of the tensorboard run, with an evaluation (the `nn` figure included) written into the run."""
    import shutil

    from typer.testing import CliRunner

    from gantoolkit.cli import build_app
    from gantoolkit.registry import reset_registry

    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(tb_run, run)
    reset_registry()
    runner = CliRunner()
    evaluated = runner.invoke(build_app(), ["evaluate", str(run), "--metrics", "nn,fd", "--n", "16", "--out",
                                            str(run / "evaluation.json")])
    assert evaluated.exit_code == 0, evaluated.output
    result = runner.invoke(build_app(), ["report", str(run), "--out", str(run / "report.html")])
    assert result.exit_code == 0, result.output
    return run / "report.html"


def test_the_report_is_one_self_contained_page(report_page):
    text = report_page.read_text()
    assert identify(report_page)[0] == HTML
    for section in ("run", "curves", "samples", "evaluation", "nearest"):
        assert f'<section id="{section}">' in text
    assert "http://" not in text and "https://" not in text and "src=\"data:image/png;base64," in text
    assert text.count("<figure>") == 3  # steps 100, 200 and the final grid
    assert "dcgan" in text and "ngf=8" in text and "fd" in text


@pytest.mark.process
@pytest.mark.browser
def test_the_report_in_headless_chromium(report_page, tmp_path):
    from playwright.sync_api import sync_playwright

    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu",
                                          "--disable-background-networking", "--disable-component-update",
                                          "--no-first-run"])
        try:
            for viewport in ({"width": 1200, "height": 900}, {"width": 390, "height": 844}):  # a desktop, a phone
                page = browser.new_page(viewport=viewport)
                page.route("**/*", route)
                page.goto(report_page.as_uri())
                for section in ("run", "curves", "samples", "evaluation", "nearest"):
                    assert page.locator(f"section#{section}").is_visible()
                    assert page.locator(f"section#{section} h2").inner_text()
                loaded = page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
                assert len(loaded) >= 5 and all(loaded)  # curves, 3 grids, the nn figure
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]  # no sideways scroll
                page.screenshot(path=str(tmp_path / f"report-{viewport['width']}.png"), full_page=True)
                page.close()
        finally:
            browser.close()
    assert outside == []


# -- the demo's Run section --------------------------------------------------------------------------------------


def test_the_demo_shows_the_runs_curves_and_configuration(tb_run, tmp_path):
    import shutil

    from gantoolkit.demo.app import build_blocks
    from gantoolkit.demo.engine import DemoEngine
    from gantoolkit.demo.run_view import run_view

    engine = DemoEngine.load(tb_run, auto_directions=None)
    curves, about = run_view(engine.model.checkpoint.path, engine.model.checkpoint.config.to_json())
    assert curves is not None and curves.ndim == 3 and curves.shape[1] >= 800
    assert "20 logged steps, the last at step 200" in about and '"loggers": [' in about
    config = build_blocks(engine).get_config_file()
    shown = {c.get("props", {}).get("elem_id"): c.get("props", {}) for c in config["components"]}
    assert {"run", "run-curves", "run-config"} <= set(shown) and shown["run-curves"]["visible"] is not False
    exported = tmp_path / "generator.safetensors"  # not in a run directory: no curves, and it says why
    shutil.copy(tb_run / "checkpoints" / "step-00000200.safetensors", exported)
    curves, about = run_view(exported, {})
    assert curves is None and about.startswith("No curves: this checkpoint is not in a run directory")


def test_after_a_rollback_tensorboard_keeps_one_value_per_step(tmp_path):
    from gantoolkit.loggers import Loggers
    from gantoolkit.training.progress import Monitor

    (tmp_path / "run").mkdir()
    monitor = Monitor(tmp_path / "run" / "metrics.jsonl", total=50, start=0)
    monitor.loggers = Loggers.create(["tensorboard"])
    monitor.loggers.start(tmp_path / "run", {"steps": 50}, 0)
    with monitor:
        for step in (10, 20, 30, 40):
            monitor.log(step, {"loss_d": 1.0, "loss_g": 1.0})
        monitor.rewind({"step": 20, "event": "rollback", "bad_step": 37, "rollback": 1})  # steps 21.. are redone
        for step in (30, 40, 50):
            monitor.log(step, {"loss_d": 2.0, "loss_g": 2.0})
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(tmp_path / "run" / "tb"), size_guidance={"scalars": 0})
    accumulator.Reload()
    assert [(e.step, e.value) for e in accumulator.Scalars("loss/loss_d")] == [
        (10, 1.0), (20, 1.0), (30, 2.0), (40, 2.0), (50, 2.0)]  # the redone steps' values, once each
    assert scalars(tmp_path / "run", "events/rollback") == [20]
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r.get("event")) for r in lines] == [  # the discarded steps' lines are gone
        (10, None), (20, None), (20, "rollback"), (30, None), (40, None), (50, None)]
