"""Run configuration: layering, TOML files, presets, validation, JSON round trip."""

from __future__ import annotations

import pytest

from gantoolkit.config import Choice, RunConfig, apply_layer, read_toml
from gantoolkit.errors import ConfigError
from gantoolkit.options import coerce, parse_assignments


def test_layers_override_in_order_and_drop_options_of_replaced_components():
    preset = apply_layer(RunConfig(), {"arch": {"name": "mlp", "hidden_dim": 32}, "steps": 100}, "preset")
    assert preset.arch == Choice("mlp", {"hidden_dim": 32})
    same = apply_layer(preset, {"arch": "mlp", "batch_size": 8}, "flags")
    assert same.arch.options == {"hidden_dim": 32} and same.steps == 100 and same.batch_size == 8
    swapped = apply_layer(preset, {"arch": "dcgan"}, "flags")
    assert swapped.arch == Choice("dcgan", {})


def test_toml_file_with_tables_options_and_aliases(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'architecture = "dcgan"\nsteps = 300\nbetas = [0.0, 0.9]\ncontroller = "infogan"\n'
        '[loss]\nname = "bce"\nlabel_smoothing = 0.1\n'
        '[data]\nname = "toy:ring"\n[data.options]\nn = 500\n'
    )
    config = apply_layer(RunConfig(), read_toml(path), str(path))
    assert config.arch.name == "dcgan" and config.steps == 300 and config.betas == (0.0, 0.9)
    assert config.loss == Choice("bce", {"label_smoothing": 0.1})
    assert config.data == Choice("toy:ring", {"n": 500})
    assert [c.name for c in config.controllers] == ["infogan"]


@pytest.mark.parametrize(
    "layer, message",
    [
        ({"stepz": 3}, "did you mean 'steps'"),
        ({"steps": "many"}, "expects int"),
        ({"steps": 2.5}, "whole number"),
        ({"arch": {"ngf": 3}}, "needs a `name`"),
        ({"arch": 3}, "must be a name or a table"),
        ({"amp": "sometimes"}, "true or false"),
        ({"on_bad_image": "ignore"}, "must be one of"),
    ],
)
def test_bad_settings_are_named(layer, message):
    with pytest.raises(ConfigError, match=message):
        apply_layer(RunConfig(), layer, "test")


@pytest.mark.parametrize(
    "field, value",
    [("steps", 0), ("batch_size", -1), ("latent_dim", 0), ("lr", 0.0), ("lr_g", -1e-3), ("ema", 1.0),
     ("betas", (1.0, 0.9)), ("n_critic", 0), ("seed", -1), ("image_size", 0)],
)
def test_validate_rejects_impossible_values(field, value):
    config = RunConfig()
    setattr(config, field, value)
    with pytest.raises(ConfigError, match=field.replace("_", "-")):
        config.validate()


def test_bad_toml_file_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("steps = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        read_toml(tmp_path / "missing.toml")


def test_json_round_trip_preserves_everything():
    config = apply_layer(
        RunConfig(),
        {"arch": {"name": "mlp", "hidden_dim": 16}, "betas": "0.5,0.99", "controllers": ["infogan"], "amp": False},
        "t",
    )
    again = RunConfig.from_json(config.to_json())
    assert again == config


def test_coerce_and_assignments():
    assert coerce("3", int, "x") == 3
    assert coerce("1e-4", float, "x") == pytest.approx(1e-4)
    assert coerce("none", int | None, "x") is None
    assert coerce("0.5,0.9", tuple[float, float], "x") == (0.5, 0.9)
    with pytest.raises(ConfigError, match="expects 2"):
        coerce("0.5", tuple[float, float], "x")
    assert parse_assignments(["a=1", "b-c = two"], "--x-opt") == {"a": "1", "b_c": "two"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignments(["novalue"], "--x-opt")
