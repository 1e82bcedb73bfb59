"""The demo's state logic (`DemoEngine`, its controls) and each of the page's callbacks, called directly."""

from __future__ import annotations

import contextlib
import io
import math
import re
import socket
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gantoolkit.errors import CheckpointError, ConfigError
from tests.conftest import TINY_DCGAN

ROOT = Path(__file__).resolve().parent.parent
TINY = [*TINY_DCGAN, "--image-size", "8", "--log-every", "50"]


pytestmark = pytest.mark.usefixtures("one_thread")


def train(*args: str) -> None:
    from gantoolkit.cli import build_app
    from gantoolkit.registry import reset_registry

    reset_registry()
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Tiny 8x8 digits generators (conditional; unconditional with InfoGAN codes), SeFa directions for the first,
    and a 1-epoch digits classifier, made once."""
    from gantoolkit.builtin.datasets.digits import Digits
    from gantoolkit.classifiers import save_classifier, train_classifier
    from gantoolkit.data import DataRequest

    root = tmp_path_factory.mktemp("demo")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train("train", *TINY, "--loss", "bce", "--cond", "onehot", "--steps", "30", "--out", str(root / "cond"))
        train("train", *TINY, "--loss", "bce", "--cond", "none", "--steps", "4", "--controller", "infogan",
              "--controller-opt", "categorical=3", "--controller-opt", "continuous=2", "--out", str(root / "info"))
        train("directions", str(root / "cond"), "--method", "pca", "--num", "2", "--samples", "64",
              "--out", str(root / "pca.safetensors"))
        train("directions", str(root / "info"), "--method", "sefa", "--num", "2",
              "--out", str(root / "other.safetensors"))
        clf, _ = train_classifier(Digits().load(DataRequest(image_size=8)), epochs=1)
        save_classifier(root / "clf.safetensors", clf)
    finally:
        torch.set_num_threads(threads)
    return root


@pytest.fixture(scope="module")
def engine(work):
    """The conditional generator with the default controls (5 SeFa directions found on load) and the classifier."""
    from gantoolkit.demo.engine import DemoEngine

    return DemoEngine.load(work / "cond", classifier=work / "clf.safetensors")


@pytest.fixture(scope="module")
def info_engine(work):
    from gantoolkit.demo.engine import DemoEngine

    return DemoEngine.load(work / "info", auto_directions=None)


@pytest.fixture
def callbacks(engine, tmp_path):
    from gantoolkit.demo.app import DemoCallbacks

    return DemoCallbacks(engine, tmp_path / "downloads")


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def zeros(engine) -> dict:
    return {c.name: (None if c.kind == "category" else c.default) for c in engine.controls}


# -- what the engine draws -------------------------------------------------------------------------------------------


def test_default_controls_are_sefa_sliders_found_on_load(engine):
    assert [c.name for c in engine.controls] == [f"sefa{i}" for i in range(5)]
    assert all(c.kind == "z" and c.minimum < 0 < c.maximum and c.default == 0 for c in engine.controls)
    assert all(torch.isclose(c.vector.norm(), torch.tensor(1.0)) for c in engine.controls)
    assert engine.notes == ["5 sefa directions found on load"]
    assert engine.class_names == [str(k) for k in range(10)]


def test_untouched_controls_draw_exactly_what_gantool_sample_draws(engine):
    """A seed names the same images on the page as on the command line (grid² samples, first ones equal)."""
    s = engine.settings(7, "3", 0, 2, zeros(engine))
    z, labels, codes = engine.inputs(s)
    expected, expected_labels = engine.model.sample(4, seed=7, class_index=3)
    assert torch.equal(z, engine.model.latents(4, 7)) and torch.equal(labels, expected_labels)
    assert torch.equal(engine.model.generate(z, labels, codes), expected)
    one = engine.render(engine.settings(7, "3", 0, 1, zeros(engine)))
    four = engine.render(s)
    assert png_pixels(four.png)[2:10, 2:10].tolist() == png_pixels(one.png).tolist()  # first cell = grid of 1


def test_display_is_enlarged_with_nearest_neighbour(engine):
    picture = engine.render(engine.settings(0, "0", 0, 1, {}))
    native = png_pixels(picture.png)
    assert native.shape[:2] == (8, 8)
    scale = picture.display.shape[0] // 8
    assert scale >= 16 and picture.display.shape[:2] == (8 * scale, 8 * scale)
    shown = picture.display if picture.display.ndim == 2 else picture.display[..., 0]
    first = native if native.ndim == 2 else native[..., 0]
    assert np.array_equal(shown[::scale, ::scale], first)  # each pixel becomes a block of one value


def test_a_direction_slider_moves_z_along_its_direction_and_changes_the_image(engine):
    base = engine.settings(1, "5", 0, 1, {})
    moved = engine.settings(1, "5", 0, 1, {"sefa0": 4.0, "sefa2": -2.5})
    z0, _, _ = engine.inputs(base)
    z1, _, _ = engine.inputs(moved)
    d0, d2 = engine.control("sefa0").vector, engine.control("sefa2").vector
    assert torch.allclose(z1 - z0, (4.0 * d0 - 2.5 * d2).expand_as(z0), atol=1e-5)
    assert not np.array_equal(engine.render(base).display, engine.render(moved).display)


def test_the_class_selector_changes_labels_and_image(engine):
    a, b = engine.settings(2, "1", 0, 2, {}), engine.settings(2, "8", 0, 2, {})
    assert engine.inputs(a)[1].tolist() == [1] * 4 and engine.inputs(b)[1].tolist() == [8] * 4
    assert not np.array_equal(engine.render(a).display, engine.render(b).display)


def test_truncation_zero_is_off_and_otherwise_bounds_z(engine):
    assert engine.settings(4, "0", 0, 1, {}).truncation is None
    s = engine.settings(4, "0", 0.5, 3, {})
    z, _, _ = engine.inputs(s)
    assert s.truncation == 0.5 and z.abs().max() <= 0.5
    assert not np.array_equal(engine.render(s).display, engine.render(engine.settings(4, "0", 0, 3, {})).display)


def test_grid_size_sets_how_many_samples(engine):
    for g in (1, 3):
        s = engine.settings(0, "2", 0, g, {})
        assert len(engine.inputs(s)[0]) == g * g
        native = png_pixels(engine.render(s).png)
        assert native.shape[0] == 8 * g + 2 * (g + 1) * (g > 1)  # cells and 2-px gaps


def test_interpolation_runs_from_one_seed_to_the_other(engine):
    s = engine.settings(3, "4", 0, 1, {"sefa1": 1.5})
    strip = engine.interpolation(s, 9, 5, spherical=True)
    native = png_pixels(strip.png)
    assert native.shape[1] == 5 * 8 + 6 * 2
    first = engine.render(s)
    last = engine.render(engine.settings(9, "4", 0, 1, {"sefa1": 1.5}))
    cell = native[2:10]
    assert np.array_equal(cell[:, 2:10], png_pixels(first.png))
    assert np.array_equal(cell[:, 2 + 4 * 10 : 10 + 4 * 10], png_pixels(last.png))


def test_more_of_a_class_takes_classifier_steps_and_is_kept_for_this_seed_only(engine):
    s = engine.settings(5, "0", 0, 2, {})
    first, before, picture, message = engine.more_of(s, "7", 8)
    assert first.steps == 8 and first.target == 7 and first.delta.shape == (4, engine.model.latent_dim)
    assert first.delta.abs().sum() > 0 and message.startswith(f"p(7) {first.before:.3f} → {first.after:.3f} after 8 "
                                                              "steps (8 in all); per step: ")
    assert first.after > first.before  # the classifier sees more of a 7
    assert len(first.probabilities) == 9 and message.endswith(" ".join(f"{p:.2f}" for p in first.probabilities))
    assert np.array_equal(before.display, engine.render(s).display)  # the before/after view: unedited, edited
    again, before_again, _, _ = engine.more_of(s, "7", 4, first)
    assert again.steps == 12 and again.probabilities[:9] == first.probabilities and len(again.probabilities) == 13
    assert np.array_equal(before_again.display, before.display)  # "before" stays the sample before any nudge
    assert not np.array_equal(engine.render(s).display, picture.display)
    assert np.array_equal(engine.render(s, first).display, picture.display)
    other_seed = engine.settings(6, "0", 0, 2, {})
    assert np.array_equal(engine.render(other_seed, first).display, engine.render(other_seed).display)
    with pytest.raises(ConfigError, match="out of range"):
        engine.more_of(s, "12", 3)
    with pytest.raises(ConfigError, match="steps must be a whole number between 1 and 50"):
        engine.more_of(s, "7", 51)


def test_more_of_needs_a_classifier(work):
    from gantoolkit.demo.engine import DemoEngine

    plain = DemoEngine.load(work / "cond", num_directions=2)
    assert plain.classifier is None and plain.target_names == [] and len(plain.controls) == 2
    with pytest.raises(ConfigError, match="no classifier was given"):
        plain.more_of(plain.settings(0, "0", 0, 1, {}), "3", 5)


def test_infogan_codes_become_sliders_and_a_category_selector(info_engine):
    kinds = {c.name: c.kind for c in info_engine.controls}
    assert kinds == {"c0": "code", "c1": "code", "cat0": "category"}
    assert info_engine.class_names == []  # unconditional: no class selector
    c1 = info_engine.control("c1")
    assert (c1.minimum, c1.maximum, c1.default) == (-2.0, 2.0, 0.0)
    s = info_engine.settings(3, None, 0, 2, {"c0": 0.0, "c1": -1.5, "cat0": 2})
    _, labels, codes = info_engine.inputs(s)
    assert labels is None
    own_codes = info_engine.model.codes(4, 3)
    assert torch.allclose(codes @ c1.vector, own_codes @ c1.vector - 1.5)  # each sample's own code, moved
    cat = info_engine.control("cat0")
    assert codes[:, cat.offset : cat.offset + 3].argmax(1).tolist() == [2, 2, 2, 2]
    own = info_engine.settings(3, None, 0, 2, {"cat0": None})
    assert torch.equal(info_engine.inputs(own)[2][:, :3], info_engine.model.codes(4, 3)[:, :3])
    assert not np.array_equal(info_engine.render(s).display, info_engine.render(own).display)


def test_directions_files_replace_the_defaults_and_must_belong_to_the_checkpoint(work):
    from gantoolkit.demo.engine import DemoEngine

    given = DemoEngine.load(work / "cond", directions=[work / "pca.safetensors"])
    assert [c.name for c in given.controls] == ["pca0", "pca1"]
    twice = DemoEngine.load(work / "cond", directions=[work / "pca.safetensors", work / "pca.safetensors"])
    assert [c.name for c in twice.controls] == ["pca.safetensors:pca0", "pca.safetensors:pca1",
                                                "pca.safetensors:pca0#2", "pca.safetensors:pca1#2"]
    with pytest.raises(CheckpointError, match="belong to"):
        DemoEngine.load(work / "cond", directions=[work / "other.safetensors"])


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    from gantoolkit.demo.engine import DemoEngine

    out = tmp_path_factory.mktemp("ring") / "ring"
    train("train", "--data", "toy:ring", "--arch", "mlp", "--loss", "bce", "--steps", "2", "--batch-size", "16",
          "--log-every", "1", "--out", str(out))
    return DemoEngine.load(out, num_directions=2)


def test_generators_of_2d_points_are_drawn_as_scatter_plots_on_fixed_axes(ring):
    from gantoolkit.demo.engine import MAX_POINTS
    from gantoolkit.demo.plot import MODE, POINT, SIDE

    assert ring.class_names == [] and [c.name for c in ring.controls] == ["sefa0", "sefa1"]
    s = ring.settings(0, None, 0, 256, {"sefa1": 3.0})
    assert s.points == 256 and len(ring.inputs(s)[0]) == 256  # the size control counts points
    picture = ring.render(s)
    assert picture.display.shape == (SIDE, SIDE, 3) and np.array_equal(png_pixels(picture.png), picture.display)
    x0, x1, y0, y1 = ring.bounds  # the eight unit-circle modes with room for their spread, the same on both axes
    assert x0 < -1 < 1 < x1 and y0 < -1 < 1 < y1 and math.isclose(x1 - x0, y1 - y0)
    far = ring.render(ring.settings(0, None, 0, 256, {"sefa1": -5.0}))
    assert ring.bounds == (x0, x1, y0, y1)  # moving a control moves the points, not the axes

    def count(image, colour):
        return int((image == np.array(colour, dtype=np.uint8)).all(-1).sum())

    assert count(picture.display, MODE) > 8 * 10  # the true modes' crosses (and the legend's)
    assert count(picture.display, POINT) > 0 and not np.array_equal(picture.display, far.display)
    assert ring.default_settings().points == 512
    with pytest.raises(ConfigError, match=f"points must be a whole number between 1 and {MAX_POINTS}"):
        ring.settings(0, None, 0, MAX_POINTS + 1, {})
    with pytest.raises(ConfigError, match="interpolation strips are drawn for image generators"):
        ring.interpolation(s, 1, 4)
    assert ring.previews() == {}


@pytest.mark.parametrize(("request_", "message"), [
    ((-1, "0", 0, 1, {}), "seed must be a whole number"),
    ((2**53, "0", 0, 1, {}), "seed must be a whole number"),
    ((1.5, "0", 0, 1, {}), "seed must be a whole number"),
    ((math.nan, "0", 0, 1, {}), "seed must be a whole number"),
    (("seven", "0", 0, 1, {}), "seed must be a whole number"),
    ((None, "0", 0, 1, {}), "seed must be a whole number"),
    ((0, "10", 0, 1, {}), "class 10 is out of range"),
    ((0, "ten", 0, 1, {}), "unknown class 'ten'"),
    ((0, None, 0, 1, {}), "choose a class"),
    ((0, "0", -0.5, 1, {}), "truncation must be 0 .off. or between"),
    ((0, "0", 0.01, 1, {}), "truncation must be 0 .off. or between"),
    ((0, "0", 3.5, 1, {}), "truncation must be 0 .off. or between"),
    ((0, "0", math.inf, 1, {}), "truncation must be a finite number"),
    ((0, "0", 0, 0, {}), "grid size must be a whole number between 1 and 8"),
    ((0, "0", 0, 9, {}), "grid size must be a whole number between 1 and 8"),
    ((0, "0", 0, 1, {"sefa0": 5.5}), "sefa0 must be between -5 and 5"),
    ((0, "0", 0, 1, {"sefa0": math.nan}), "sefa0 must be between -5 and 5"),
    ((0, "0", 0, 1, {"sefa0": None}), "sefa0 needs a number"),
    ((0, "0", 0, 1, {"sefa9": 1.0}), "no control named 'sefa9'"),
])
def test_bad_requests_are_refused_with_one_clear_line(engine, request_, message):
    with pytest.raises(ConfigError, match=message):
        engine.settings(*request_)


def test_bad_requests_for_codes_and_unconditional_models(info_engine):
    with pytest.raises(ConfigError, match="unconditional"):
        info_engine.settings(0, "3", 0, 1, {})
    with pytest.raises(ConfigError, match=r"cat0 takes a category 0\.\.2"):
        info_engine.settings(0, None, 0, 1, {"cat0": 3})
    with pytest.raises(ConfigError, match="c0 must be between -2 and 2"):
        info_engine.settings(0, None, 0, 1, {"c0": 2.5})


def test_interpolation_bounds(engine):
    s = engine.settings(0, "0", 0, 1, {})
    with pytest.raises(ConfigError, match="frames must be a whole number between 2 and 16"):
        engine.interpolation(s, 1, 17)
    with pytest.raises(ConfigError, match="the other seed must be a whole number"):
        engine.interpolation(s, -3, 4)


LONG = "x" * 5000


@pytest.mark.parametrize(("request_", "message"), [
    (("abc", "0", 0, 1, {}), "seed must be a whole number between 0 and 9007199254740991, got 'abc'"),
    (([3], "0", 0, 1, {}), "seed must be a whole number between 0 and 9007199254740991, got [3]"),
    (({"seed": 3}, "0", 0, 1, {}), "seed must be a whole number"),
    ((True, "0", 0, 1, {}), "seed must be a whole number between 0 and 9007199254740991, got True"),
    ((10**400, "0", 0, 1, {}), "seed must be a whole number"),
    ((0, "0", "abc", 1, {}), "truncation must be a number, got 'abc'"),
    ((0, "0", None, 1, {}), "truncation must be a number, got None"),
    ((0, "0", [0.5], 1, {}), "truncation must be a number, got [0.5]"),
    ((0, "0", True, 1, {}), "truncation must be a number, got True"),
    ((0, "0", math.nan, 1, {}), "truncation must be a finite number, got nan"),
    ((0, "0", 0, 1.5, {}), "grid size must be a whole number between 1 and 8, got 1.5"),
    ((0, "0", 0, True, {}), "grid size must be a whole number between 1 and 8, got True"),
    ((0, "0", 0, "2", {}), "grid size must be a whole number between 1 and 8, got '2'"),
    ((0, "0", 0, None, {}), "grid size must be a whole number between 1 and 8, got None"),
    ((0, ["7"], 0, 1, {}), "the class must be a class name or an index, got ['7']"),
    ((0, True, 0, 1, {}), "the class must be a class name or an index, got True"),
    ((0, 10**5000, 0, 1, {}), "the class must be a class name or an index, got a number too long to show"),
    ((0, "0", 0, 1, {"sefa0": "abc"}), "sefa0 needs a number between -5 and 5, got 'abc'"),
    ((0, "0", 0, 1, {"sefa0": [1.0]}), "sefa0 needs a number between -5 and 5, got [1.0]"),
    ((0, "0", 0, 1, {"sefa0": True}), "sefa0 needs a number between -5 and 5, got True"),
    ((0, "0", 0, 1, {"sefa0": 10**400}), "sefa0 must be between -5 and 5"),
])
def test_values_of_the_wrong_type_are_refused_in_one_line(engine, request_, message):
    with pytest.raises(ConfigError) as refused:
        engine.settings(*request_)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


@pytest.mark.parametrize("request_", [
    (LONG, "0", 0, 1, {}), (0, "0", LONG, 1, {}), (0, "0", 0, LONG, {}), (0, LONG, 0, 1, {}),
    (0, "0", 0, 1, {"sefa0": LONG}), (0, "0", 0, 1, {LONG: 1.0}), (0, "0", 0, 1, {"sefa0": [0.0] * 5000}),
])
def test_a_long_value_is_not_echoed_in_full(engine, request_):
    with pytest.raises(ConfigError) as refused:
        engine.settings(*request_)
    assert len(str(refused.value)) < 200 and "…" in str(refused.value)


def test_codes_and_edits_check_types_too(info_engine, engine):
    for value, message in [("1", "got '1'"), (1.5, "got 1.5"), (True, "got True"), ([1], "got [1]"),
                           (math.nan, "got nan")]:
        with pytest.raises(ConfigError, match=rf"cat0 takes a category 0\.\.2, {re.escape(message)}"):
            info_engine.settings(0, None, 0, 1, {"cat0": value})
    s = engine.settings(0, "0", 0, 1, {})
    for target, message in [([1], "the class to move towards must be a class name or an index, got [1]"),
                            (LONG, "is too long to be a class name")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            engine.more_of(s, target, 3)
    for steps in ("abc", True, 1.5, None, [3]):
        with pytest.raises(ConfigError, match="steps must be a whole number between 1 and 50"):
            engine.more_of(s, "1", steps)
    for other in ("abc", True, 2.5, None):
        with pytest.raises(ConfigError, match="the other seed must be a whole number"):
            engine.interpolation(s, other, 4)


# -- the page's callbacks --------------------------------------------------------------------------------------------


def test_render_callback_returns_the_picture_its_download_and_a_status(callbacks, engine):
    image, path, status = callbacks.render(12, "6", 0.8, 2, 1.0, 0, 0, 0, -1.0, None)
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape[0] >= 300
    expected = engine.render(engine.settings(12, "6", 0.8, 2, {"sefa0": 1.0, "sefa4": -1.0}))
    assert np.array_equal(image, expected.display)
    assert Path(path).parent == callbacks.folder and Path(path).read_bytes() == expected.png
    assert status.startswith("seed 12 · class 6 · truncation 0.8 · 2×2 grid · ") and status.endswith("on the server")
    by_index, _, _ = callbacks.render(12, 6, 0.8, 2, 1.0, 0, 0, 0, -1.0, None)  # a class by index, as API callers may
    assert np.array_equal(by_index, image)


@pytest.mark.parametrize(("args", "message"), [
    ((-5, "6", 0, 1, 0, 0, 0, 0, 0, None), "seed must be a whole number between 0 and"),
    ((0, "99", 0, 1, 0, 0, 0, 0, 0, None), "class 99 is out of range"),
    ((0, "6", -1, 1, 0, 0, 0, 0, 0, None), "truncation must be 0"),
    ((0, "6", 0, 100, 0, 0, 0, 0, 0, None), "grid size must be a whole number between 1 and 8"),
    ((0, "6", 0, 1, 0, 0, 50, 0, 0, None), "sefa2 must be between -5 and 5"),
    ((0, "6", 0, 1, 0, 0, None), "expected 5 control values, got 2"),
])
def test_render_callback_turns_bad_values_into_a_gradio_error(callbacks, args, message):
    with pytest.raises(gr.Error, match=message):
        callbacks.render(*args)


@pytest.mark.parametrize(("args", "message"), [
    (("abc", "6", 0, 1, 0, 0, 0, 0, 0, None), "seed must be a whole number between 0 and 9007199254740991, got 'abc'"),
    ((1.5, "6", 0, 1, 0, 0, 0, 0, 0, None), "seed must be a whole number between 0 and 9007199254740991, got 1.5"),
    ((math.nan, "6", 0, 1, 0, 0, 0, 0, 0, None), "seed must be a whole number"),
    ((0, "6", 0, True, 0, 0, 0, 0, 0, None), "grid size must be a whole number between 1 and 8, got True"),
    ((0, "6", None, 1, 0, 0, 0, 0, 0, None), "truncation must be a number, got None"),
    ((0, "6", 0, 1, None, 0, 0, 0, 0, None), "sefa0 needs a number between -5 and 5, got None"),
    ((0, "6", 0, 1, 0, [1, 2], 0, 0, 0, None), "sefa1 needs a number between -5 and 5, got [1, 2]"),
    ((0, "6", 0, 1, 0, 0, "abc", 0, 0, None), "sefa2 needs a number between -5 and 5, got 'abc'"),
    ((0, {"x": 1}, 0, 1, 0, 0, 0, 0, 0, None), "the class must be a class name or an index"),
])
def test_callbacks_refuse_values_of_the_wrong_type_in_one_line_without_a_traceback(callbacks, capsys, args, message):
    with pytest.raises(gr.Error) as refused:
        callbacks.render(*args)
    assert refused.value.message.startswith(message) and "\n" not in refused.value.message
    assert refused.value.print_exception is False  # Gradio logs no traceback for it
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(gr.Error, match="frames must be a whole number"):
        callbacks.interpolate(2, "3", 0, 1, 4, 2.5, False, 0, 0, 0, 0, 0)
    with pytest.raises(gr.Error, match="slerp must be true or false, got 'yesyesyes"):
        callbacks.interpolate(2, "3", 0, 1, 4, 4, "yes" * 1000, 0, 0, 0, 0, 0)
    with pytest.raises(gr.Error, match="steps must be a whole number between 1 and 50, got 'abc'"):
        callbacks.more_of(1, "2", 0, 1, "9", "abc", 0, 0, 0, 0, 0, None)
    assert "Traceback" not in capsys.readouterr().err


def test_the_download_folder_keeps_only_the_newest_files(callbacks, monkeypatch):
    from gantoolkit.demo import app

    monkeypatch.setattr(app, "KEEP_DOWNLOADS", 3)
    paths = [callbacks.render(seed, "1", 0, 1, 0, 0, 0, 0, 0, None)[1] for seed in range(5)]
    kept = sorted(str(p) for p in callbacks.folder.glob("*.png"))
    assert len(set(paths)) == 5 and len(kept) == 3 and set(kept) <= set(paths)
    assert Path(paths[-1]).exists() and not list(callbacks.folder.glob("*.tmp"))


def test_an_unexpected_failure_is_a_gradio_error_too(callbacks, monkeypatch, capsys):
    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(callbacks.engine, "render", broken)
    with pytest.raises(gr.Error, match="unexpected RuntimeError: boom"):
        callbacks.render(0, "1", 0, 1, 0, 0, 0, 0, 0, None)
    assert "Traceback" in capsys.readouterr().err  # for whoever runs the server, not for the page


def test_random_button_and_reset_callbacks(callbacks, engine):
    from gantoolkit.demo.app import RANDOM_SEEDS

    seeds = {callbacks.random_seed() for _ in range(20)}
    assert len(seeds) > 1 and all(0 <= s < RANDOM_SEEDS for s in seeds)
    engine.settings(max(seeds), "0", 0, 1, {})  # every seed it gives is one the page takes
    assert callbacks.reset_controls() == [0.0] * 5


def test_interpolate_callback(callbacks):
    image, note = callbacks.interpolate(2, "3", 0, 1, 4, 6, True, 0, 0, 0, 0, 0)
    assert image.shape[1] > 5 * image.shape[0] and note.startswith("slerp from seed 2 to seed 4 · ")
    with pytest.raises(gr.Error, match="frames must be a whole number between 2 and 16"):
        callbacks.interpolate(2, "3", 0, 1, 4, 40, False, 0, 0, 0, 0, 0)
    with pytest.raises(gr.Error, match="slerp must be true or false"):
        callbacks.interpolate(2, "3", 0, 1, 4, 4, "yes", 0, 0, 0, 0, 0)


def test_more_of_and_reset_edit_callbacks(callbacks):
    from gantoolkit.demo.engine import Edit

    image, path, status, edit, message, before, after = callbacks.more_of(1, "2", 0, 1, "9", 5, 0, 0, 0, 0, 0, None)
    assert isinstance(edit, Edit) and edit.steps == 5 and message.startswith("p\\(9\\) ")  # shown as Markdown
    assert np.array_equal(after, image) and not np.array_equal(before, image)
    assert "edited: 5 steps" in status and Path(path).exists()
    plain, _, _ = callbacks.render(1, "2", 0, 1, 0, 0, 0, 0, 0, None)
    kept, _, _ = callbacks.render(1, "2", 0, 1, 0, 0, 0, 0, 0, edit)
    assert np.array_equal(kept, image) and not np.array_equal(plain, image)
    after = callbacks.more_of(1, "2", 0, 1, "9", 5, 0, 0, 0, 0, 0, edit)[3]
    assert after.steps == 10
    cleared = callbacks.reset_edit(1, "2", 0, 1, 0, 0, 0, 0, 0)
    assert np.array_equal(cleared[0], plain) and cleared[3:] == (None, "no edit", None, None)
    with pytest.raises(gr.Error, match="steps must be a whole number between 1 and 50"):
        callbacks.more_of(1, "2", 0, 1, "9", 0, 0, 0, 0, 0, 0, None)
    with pytest.raises(gr.Error, match="the classifier has no class 'nine'"):
        callbacks.more_of(1, "2", 0, 1, "nine", 3, 0, 0, 0, 0, 0, None)


def test_category_selector_callback_values(info_engine, tmp_path):
    from gantoolkit.demo.app import OWN, DemoCallbacks

    cb = DemoCallbacks(info_engine, tmp_path)
    order = [c.name for c in info_engine.controls]
    own = [OWN if n == "cat0" else 0.0 for n in order]
    two = ["2" if n == "cat0" else 0.0 for n in order]
    a, _, _ = cb.render(0, None, 0, 2, *own, None)
    b, _, _ = cb.render(0, None, 0, 2, *two, None)
    assert not np.array_equal(a, b)
    assert cb.reset_controls() == own
    with pytest.raises(gr.Error, match="cat0 takes"):
        cb.render(0, None, 0, 2, *["x" if n == "cat0" else 0.0 for n in order], None)
    with pytest.raises(gr.Error, match=r"cat0 takes a category 0\.\.2"):
        cb.render(0, None, 0, 2, *["7" if n == "cat0" else 0.0 for n in order], None)


def test_the_page_wires_every_control(engine, callbacks):
    from gantoolkit.demo.app import build_blocks

    blocks = build_blocks(engine, callbacks)
    config = blocks.get_config_file()
    api = {d.get("api_name") for d in config["dependencies"]}
    assert {"render", "random_seed", "reset_controls", "interpolate", "more_of", "reset_edit"} <= api
    assert "before" in str(config) and "after" in str(config)  # the before/after view of a classifier edit
    ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    assert {"seed", "random", "class", "truncation", "grid", "picture", "download", "more", "interpolate",
            "summary", *(f"control-{i}" for i in range(5))} <= ids
    render = next(d for d in config["dependencies"] if d.get("api_name") == "render")
    assert len(render["targets"]) == 4 + 5  # seed, class, truncation, grid and every direction redraw


def test_summary_shows_the_checkpoint_and_escapes_what_it_holds(engine):
    from gantoolkit.demo.app import summary_markdown

    text = summary_markdown(engine.summary(), engine.notes)
    for expected in ("dcgan", "bce", "onehot", "| **step** | 30 |", "digits", "0, 1, 2", "sefa directions"):
        assert expected in text
    summary = engine.summary()
    summary["data"] = {**summary["data"], "class_names": ["<img src=x onerror=alert(1)>", "a|b"]}
    hostile = summary_markdown(summary, [])
    assert "<img" not in hostile and "a\\|b" in hostile
    run = work_name(engine)
    assert f"| **run** | {run} |" in text.replace("\\", "") and str(engine.model.checkpoint.path.parent) not in text


def work_name(engine) -> str:
    """What the page calls the checkpoint: the run's folder and the file, e.g. cond/step-00000030."""
    path = engine.model.checkpoint.path
    return f"{path.parent.parent.name}/{path.stem}"


def page_config(engine, callbacks) -> dict:
    from gantoolkit.demo.app import build_blocks

    return build_blocks(engine, callbacks).get_config_file()


def props(config: dict, elem_id: str) -> dict:
    return next(c["props"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)


def test_a_first_time_user_is_told_what_to_do_and_sees_what_each_slider_changes(engine, callbacks):
    config = page_config(engine, callbacks)
    intro = props(config, "intro")["value"]
    assert intro.startswith(f"## gantoolkit demo · {work_name(engine).replace('-', chr(92) + '-')}")
    assert "To explore it, type a seed or press **Random**" in intro and "choose a **Class**" in intro
    assert str(engine.model.checkpoint.path.parent) not in str(config)  # no server path on the page
    previews = engine.previews()
    assert list(previews) == [c.name for c in engine.controls]
    for i, control in enumerate(engine.controls):  # -5 ... +5 of the first picture's sample, side by side
        strip = previews[control.name]
        side = strip.shape[0] - 4
        frames = [strip[2:-2, 2 + k * (side + 2): 2 + k * (side + 2) + side] for k in range(5)]
        moved = engine.render(engine.settings(0, "0", 0, 1, {control.name: control.maximum}))
        assert side >= 40 and strip.shape[1] == 5 * side + 6 * 2
        assert np.array_equal(frames[-1][::side // 8, ::side // 8], png_pixels(moved.png))
        assert props(config, f"preview-{i}")["label"] == f"{control.name} from -5 (left) to 5 (right)"
    labels = {c["props"].get("label") or c["props"].get("value") for c in config["components"]}
    assert "Make it look more like a class (the classifier guides the sample)" in labels
    assert "Nudge towards this class" in labels
    assert props(config, "picture")["buttons"] == ["fullscreen"]  # one download: the button, the native pixels
    first = engine.render(engine.default_settings())
    assert Path(props(config, "download")["value"]["path"]).read_bytes() == first.png  # there before any event


def test_the_picture_is_there_when_the_page_loads_without_a_round_trip(engine, callbacks):
    config = page_config(engine, callbacks)
    assert props(config, "picture")["value"] is not None
    assert props(config, "status")["value"].startswith("seed 0 · class 0 · ")
    assert not [d for d in config["dependencies"] if any(t[1] == "load" for t in d["targets"])]


def test_alt_text_for_every_picture(engine, callbacks):
    from gantoolkit.demo.app import alt_text_script, alt_texts, build_blocks

    texts = alt_texts(build_blocks(engine, callbacks))
    assert texts["picture"] == "the generated picture for the current settings"
    assert texts["preview-0"] == "what sefa0 from -5 (left) to 5 (right)"
    assert {"strip", "before", "after"} <= set(texts)
    script = alt_text_script({"x": "</script><b>"})
    assert "</script><b>" not in script and script.count("</script>") == 1


def test_infogan_starts_from_the_sample_gantool_sample_draws(info_engine):
    s = info_engine.default_settings()
    expected, _ = info_engine.model.sample(1, seed=0)
    z, labels, codes = info_engine.inputs(s)
    assert torch.equal(codes, info_engine.model.codes(1, 0))  # the codes as drawn, not set to 0
    assert torch.equal(info_engine.model.generate(z, labels, codes), expected)
    assert [c.default for c in info_engine.controls if c.kind == "code"] == [0.0, 0.0]


def test_an_unconditional_page_has_no_class_and_2d_data_counts_points(ring, tmp_path):
    from gantoolkit.demo.app import DemoCallbacks

    cb = DemoCallbacks(ring, tmp_path)
    config = page_config(ring, cb)
    assert props(config, "points")["label"] == "Points" and not any(
        c["props"].get("elem_id") == "grid" for c in config["components"])
    assert "This generator makes 2-D points" in props(config, "intro")["value"]
    api = {d.get("api_name") for d in config["dependencies"]}
    assert "interpolate" not in api and "more_of" not in api
    image, _, status = cb.render(0, None, 0, 128, 0.0, 0.0, None)
    assert status.startswith("seed 0 · 128 points · ") and image.shape == (480, 480, 3)


# -- through Gradio's API, served on 127.0.0.1 ---------------------------------------------------------------------


@contextlib.contextmanager
def serving(engine, folder: Path):
    """The page of `engine` served in this process on a free 127.0.0.1 port (no browser); yields its URL."""
    from gantoolkit.demo.app import DemoCallbacks, build_blocks, launch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    blocks = build_blocks(engine, DemoCallbacks(engine, folder / "downloads"))
    launch(blocks, "127.0.0.1", port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        blocks.close()


@pytest.fixture
def served(engine, tmp_path, monkeypatch):
    """The conditional model's page (directions sefa0..4, a classifier) served in this process; yields its URL."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    with serving(engine, tmp_path) as url:
        yield url


def api_info(url: str) -> dict:
    import httpx

    return httpx.get(f"{url}gradio_api/info", timeout=60).json()["named_endpoints"]


def raw_call(url: str, api_name: str, body: str) -> str:
    """An event sent as raw HTTP (what no client library checks first); its answer as text."""
    import httpx

    call = f"{url}gradio_api/call/{api_name}"
    posted = httpx.post(call, content=body, headers={"content-type": "application/json"}, timeout=60)
    assert posted.status_code == 200, posted.text
    return httpx.get(f"{call}/{posted.json()['event_id']}", timeout=60).text


SEFA = ["sefa0", "sefa1", "sefa2", "sefa3", "sefa4"]


def test_the_api_names_inputs_after_the_controls_and_describes_every_endpoint(served):
    info = api_info(served)
    assert set(info) == {"/render", "/random_seed", "/reset_controls", "/interpolate", "/more_of", "/reset_edit"}
    names = {name: [p["parameter_name"] for p in ep["parameters"]] for name, ep in info.items()}
    base = ["seed", "class_name", "truncation", "grid"]
    assert names["/render"] == names["/reset_edit"] == [*base, *SEFA]
    assert names["/interpolate"] == [*base, "to_seed", "frames", "slerp", *SEFA]
    assert names["/more_of"] == [*base, "target", "steps", *SEFA]
    assert names["/random_seed"] == names["/reset_controls"] == []
    for name, ep in info.items():
        text = ep["description"]
        assert text and "\n" not in text and len(text) < 120 and "callback" not in text.lower(), (name, text)
        assert all(p["parameter_has_default"] for p in ep["parameters"])  # each input defaults to its control's start
        assert not [r for r in ep["returns"] if r["label"].startswith("value_")], (name, ep["returns"])
    assert [r["label"] for r in info["/render"]["returns"]] == [
        "Generated", "Download PNG (the generator's own pixels)", "Status"]


def test_every_endpoint_by_its_documented_name_with_good_and_bad_values(served, capfd):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(served, verbose=False)
    capfd.readouterr()
    image, png, status = client.predict(seed=3, class_name="7", sefa0=2.5, api_name="/render")
    assert status.startswith("seed 3 · class 7 · ") and Path(png).exists() and Path(image).exists()
    assert isinstance(client.predict(api_name="/random_seed"), int | float)
    assert list(client.predict(api_name="/reset_controls")) == [0.0] * 5
    strip, note = client.predict(seed=3, class_name="7", to_seed=5, frames=4, slerp=True, api_name="/interpolate")
    assert note.startswith("slerp from seed 3 to seed 5") and Path(strip).exists()
    edited = client.predict(seed=3, class_name="7", target="1", steps=3, api_name="/more_of")
    assert "edited: 3 steps" in edited[2] and edited[3].startswith("p\\(1\\) ") and Path(edited[4]).exists()
    assert client.predict(seed=3, class_name="7", api_name="/reset_edit")[3] == "no edit"
    bad = [
        ("/interpolate", {"to_seed": "abc"}, "the other seed must be a whole number between 0 and"),
        ("/interpolate", {"frames": 1.5}, "frames must be a whole number between 2 and 16, got 1.5"),
        ("/interpolate", {"frames": True}, "frames must be a whole number between 2 and 16, got True"),
        ("/interpolate", {"slerp": None}, "slerp must be true or false, got None"),
        ("/interpolate", {"seed": [1]}, "seed must be a whole number between 0 and 9007199254740991, got [1]"),
        ("/more_of", {"target": [1]}, "the class to move towards must be a class name or an index, got [1]"),
        ("/more_of", {"steps": None}, "steps must be a whole number between 1 and 50, got None"),
        ("/more_of", {"sefa3": "abc"}, "sefa3 needs a number between -5 and 5, got 'abc'"),
        ("/more_of", {"target": LONG}, "the class to move towards 'xxx"),
        ("/reset_edit", {"truncation": None}, "truncation must be a number, got None"),
        ("/reset_edit", {"grid": 1.5}, "grid size must be a whole number between 1 and 8, got 1.5"),
        ("/render", {"class_name": None}, "choose a class"),
        ("/render", {"sefa4": True}, "sefa4 needs a number between -5 and 5, got True"),
    ]
    for api_name, values, message in bad:
        with pytest.raises(AppError) as refused:
            client.predict(**{"class_name": "7", **values}, api_name=api_name)
        assert str(refused.value).startswith(message) and len(str(refused.value)) < 200, (api_name, refused.value)
    for body, message in [  # NaN by raw HTTP; extra and missing values
        ('{"data": [3, "7", 0, 1, 4, NaN, false, 0, 0, 0, 0, 0]}', "frames must be a whole number"),
        ('{"data": [3, "7", 0, 1, 0, 0, 0, 0, 0, 99]}', "/render takes 9 values, got 10"),
        ('{"data": [3, "7", 0, 1, 0, 0, 0, 0, 0, 99, 100]}', "/render takes 9 values, got 11"),
        ('{"data": [3, "7", 0, 1, 0, 0, 0, 0]}', "/render takes 9 values, got 8"),
    ]:
        api_name = "interpolate" if "NaN" in body else "render"
        answer = raw_call(served, api_name, body)
        assert "event: error" in answer and message in answer, answer
    assert raw_call(served, "interpolate", '{"data": [3, "7", 0, 1, 4, 4, false, 0, 0, 0, 0, 0, 1]}').count(
        "/interpolate takes 12 values, got 13") == 1
    assert client.predict(seed=4, class_name="1", api_name="/render")[2].startswith("seed 4 · class 1")  # still up
    log = capfd.readouterr()
    assert "Traceback" not in log.err + log.out and "Error" not in log.err, log.err
    lines = log.err.splitlines()  # one short line per refusal
    assert len([line for line in lines if line.startswith("refused ")]) == len(bad) + 5, log.err
    assert all(len(line) < 300 for line in lines) and "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" not in log.err


def test_an_unknown_endpoint_is_a_404(served, capfd):
    import httpx

    capfd.readouterr()
    for path in ("gradio_api/call/nope", "gradio_api/call/v2/nope"):
        answer = httpx.post(f"{served}{path}", json={"data": []}, timeout=60)
        assert answer.status_code == 404, (path, answer.status_code, answer.text)
    assert "Traceback" not in capfd.readouterr().err


def test_the_readme_api_example_runs(served, capsys):
    readme = (ROOT / "README.md").read_text()
    example = readme.split("With `gradio_client`:\n\n```python\n", 1)[1].split("```", 1)[0]
    assert 'Client("http://127.0.0.1:7860/")' in example
    exec(compile(example.replace("http://127.0.0.1:7860/", served), "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()[-2:]  # after the client's own "Loaded as API" line
    assert printed[0].startswith("seed 3 · class 7 · ") and printed[1].startswith("slerp from seed 3 to seed 5 · ")


def test_without_a_classifier_there_is_no_more_of_and_unconditional_models_take_no_class(info_engine, tmp_path,
                                                                                           monkeypatch):
    from gradio_client import Client

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    with serving(info_engine, tmp_path) as url:
        info = api_info(url)
        assert set(info) == {"/render", "/random_seed", "/reset_controls", "/interpolate"}
        klass = next(p for p in info["/render"]["parameters"] if p["parameter_name"] == "class_name")
        assert klass["parameter_has_default"] and klass["parameter_default"] is None
        assert [p["parameter_name"] for p in info["/render"]["parameters"]] == ["seed", "class_name", "truncation",
                                                                                "grid", "c0", "c1", "cat0"]
        client = Client(url, verbose=False)
        assert client.predict(seed=2, c1=1.0, api_name="/render")[2].startswith("seed 2 · ")


def test_api_calls_with_values_of_the_wrong_type_get_one_line_and_the_log_no_traceback(served, capfd):
    import httpx
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(served, verbose=False)
    rest = [0.0] * 5
    capfd.readouterr()
    bad = [
        (("abc", "7", 0, 1, *rest), "seed must be a whole number between 0 and 9007199254740991, got 'abc'"),
        (([1, 2], "7", 0, 1, *rest), "seed must be a whole number between 0 and 9007199254740991, got [1, 2]"),
        ((1.5, "7", 0, 1, *rest), "seed must be a whole number between 0 and 9007199254740991, got 1.5"),
        ((True, "7", 0, 1, *rest), "seed must be a whole number between 0 and 9007199254740991, got True"),
        ((LONG, "7", 0, 1, *rest), "seed must be a whole number between 0 and 9007199254740991, got 'xxx"),
        ((-4, "7", 0, 1, *rest), "seed must be a whole number between 0 and 9007199254740991, got -4"),
        ((3, "7", None, 1, *rest), "truncation must be a number, got None"),
        ((3, "7", "abc", 1, *rest), "truncation must be a number, got 'abc'"),
        ((3, "7", 0, 1.5, *rest), "grid size must be a whole number between 1 and 8, got 1.5"),
        ((3, "7", 0, 40, *rest), "grid size must be a whole number between 1 and 8, got 40"),
        ((3, ["7"], 0, 1, *rest), "the class must be a class name or an index, got ['7']"),
        ((3, "seven", 0, 1, *rest), "unknown class 'seven'"),
        ((3, "7", 0, 1, None, 0, 0, 0, 0), "sefa0 needs a number between -5 and 5, got None"),
        ((3, "7", 0, 1, "abc", 0, 0, 0, 0), "sefa0 needs a number between -5 and 5, got 'abc'"),
        ((3, "7", 0, 1, 80.0, 0, 0, 0, 0), "sefa0 must be between -5 and 5, got 80.0"),
    ]
    for args, message in bad:
        with pytest.raises(AppError) as refused:
            client.predict(*args, api_name="/render")
        assert str(refused.value).startswith(message) and len(str(refused.value)) < 200, str(refused.value)
    with pytest.raises(AppError, match="frames must be a whole number between 2 and 16, got 'abc'"):
        client.predict(3, "7", 0, 1, 5, "abc", False, *rest, api_name="/interpolate")
    with pytest.raises(AppError, match="slerp must be true or false, got 'yes'"):
        client.predict(3, "7", 0, 1, 5, 4, "yes", *rest, api_name="/interpolate")
    with pytest.raises(AppError, match="steps must be a whole number between 1 and 50, got True"):
        client.predict(3, "7", 0, 1, "1", True, *rest, api_name="/more_of")
    call = f"{served}gradio_api/call/render"
    for body, message in [('{"data": [NaN, "7", 0, 1, 0, 0, 0, 0, 0]}', "seed must be a whole number"),
                          ('{"data": [3, "7", 0, 1, Infinity, 0, 0, 0, 0]}', "sefa0 must be between -5 and 5")]:
        posted = httpx.post(call, content=body, headers={"content-type": "application/json"}, timeout=60)
        event = posted.json()["event_id"]
        answer = httpx.get(f"{call}/{event}", timeout=60).text  # JSON has no NaN, but a raw request can send one
        assert "event: error" in answer and message in answer, answer
    image, _, status = client.predict(4, "1", 0, 1, *rest, api_name="/render")  # the server is still up
    assert status.startswith("seed 4 · class 1") and Path(image).exists()
    log = capfd.readouterr()
    assert "Traceback" not in log.err + log.out and "Error" not in log.err, log.err


# -- the command -----------------------------------------------------------------------------------------------------


def test_demo_command_reports_bad_arguments_in_one_line(cli, work):
    import pickle

    bad_port = cli("demo", str(work / "cond"), "--port", "70000")
    assert bad_port.exit_code != 0 and "--port must be between 1 and 65535" in bad_port.output
    missing = cli("demo", str(work / "nope"))
    assert missing.exit_code != 0 and "Traceback" not in missing.output
    foreign = cli("demo", str(work / "cond"), "--directions", str(work / "other.safetensors"))
    assert foreign.exit_code != 0 and "belong to" in foreign.output
    (work / "evil.safetensors").write_bytes(pickle.dumps({"a": 1}))
    evil = cli("demo", str(work / "cond"), "--classifier", str(work / "evil.safetensors"))
    assert evil.exit_code != 0 and "never unpickles" in evil.output
    finder = cli("demo", str(work / "cond"), "--auto-directions", "infogan")
    assert finder.exit_code != 0 and "infogan" in finder.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = cli("demo", str(work / "cond"), "--port", str(port), "--num-directions", "1")
    assert busy.exit_code == 2 and f"port {port} on 127.0.0.1 is in use by another program" in busy.output
    assert "Traceback" not in busy.output


@pytest.mark.process
def test_help_imports_neither_torch_nor_gradio():
    code = ("import sys; from gantoolkit.cli import build_app; build_app()(['demo', '--help'], standalone_mode=False);"
            "assert 'torch' not in sys.modules and 'gradio' not in sys.modules, 'imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "--directions" in result.stdout and "127.0.0.1" in result.stdout
    script = subprocess.run([sys.executable, "demo/app.py", "--help"], capture_output=True, text=True, cwd=ROOT,
                            timeout=600)
    assert script.returncode == 0 and "--classifier" in script.stdout, script.stderr


def test_a_model_of_a_wrapping_architecture_works_without_special_cases(tmp_path):
    """The demo knows a generator only through load_generator: PacGAN (a critic that judges packs, around DCGAN)
    draws, previews and serves its API like any other."""
    from gantoolkit.demo.app import DemoCallbacks, build_blocks
    from gantoolkit.demo.engine import DemoEngine

    train("train", *TINY, "--arch", "pac", "--arch-opt", "base=dcgan", "--loss", "bce", "--cond", "onehot",
          "--steps", "2", "--log-every", "1", "--out", str(tmp_path / "pac"))
    pac = DemoEngine.load(tmp_path / "pac", num_directions=2)
    assert pac.summary()["arch"]["name"] == "pac"
    s = pac.settings(1, "4", 0, 2, {"sefa0": 2.0})
    expected, _ = pac.model.sample(4, seed=1, class_index=4)
    assert torch.equal(pac.model.generate(*pac.inputs(pac.settings(1, "4", 0, 2, {}))), expected)
    assert png_pixels(pac.render(s).png).shape[:2] == (8 * 2 + 2 * 3,) * 2
    assert list(pac.previews()) == ["sefa0", "sefa1"]
    config = build_blocks(pac, DemoCallbacks(pac, tmp_path / "downloads")).get_config_file()
    assert {d.get("api_name") for d in config["dependencies"]} >= {"render", "interpolate"}
