"""Property-based tests (hypothesis) of what gantoolkit parses from outside: run configurations (TOML tables, JSON in
checkpoints), option values, and checkpoint files with generated metadata or garbage headers. Valid input
round-trips exactly; anything else is one `ConfigError` / `CheckpointError`, never another exception."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
import typing
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save

from gantoolkit.config import (
    FIELD_TYPES,
    FIELDS,
    FROM_COMMAND_LINE,
    MAX_LATENT_DIM,
    MAX_SEED,
    MAX_WORKERS,
    RunConfig,
    apply_layer,
)
from gantoolkit.data import DataInfo
from gantoolkit.errors import CheckpointError, ConfigError
from gantoolkit.files.checkpoint import load_checkpoint, read_metadata
from gantoolkit.options import coerce

#: HYPOTHESIS_EXAMPLES=1000 explores further than the default run, which takes seconds
SETTINGS = settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- values ---------------------------------------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9_-]{0,11}(:[a-z0-9._-]{1,8})?", fullmatch=True)
json_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
                | st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
option_values = st.booleans() | st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6) | st.text(max_size=10)
options = st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,9}", fullmatch=True).filter(lambda k: k != "name"),
                          option_values, max_size=3)
choices = names | st.builds(lambda n, o: {"name": n, **o}, names, options) | st.builds(
    lambda n, o: {"name": n, "options": o}, names, options)


def valid_value(name: str) -> st.SearchStrategy:
    """Values a user may give for the setting `name` (in TOML or JSON form)."""
    positive = st.integers(1, 10**6)
    special = {
        "arch": choices, "loss": choices, "cond": choices, "data": choices, "augment": choices,
        "controllers": st.lists(choices, max_size=3),
        "image_size": st.none() | st.integers(1, 4096), "n_critic": st.none() | positive,
        "seed": st.integers(0, MAX_SEED), "ema": st.floats(0, 0.999),
        "lr": st.none() | st.floats(1e-8, 10.0), "lr_g": st.none() | st.floats(1e-8, 10.0),
        "lr_d": st.none() | st.floats(1e-8, 10.0),
        "betas": st.none() | st.tuples(st.floats(0, 0.999), st.floats(0, 0.999)).map(list),
        "optimizer": st.none() | st.sampled_from(["adam", "adamw", "rmsprop", "sgd"]),
        "track": st.just([]), "track_n": st.integers(2, 10**5), "amp": st.none() | st.booleans(),
        "threads": st.none() | st.integers(1, 1024), "workers": st.none() | st.integers(0, MAX_WORKERS),
        "loggers": st.just([]),
        "latent_dim": st.integers(1, MAX_LATENT_DIM),
    }
    if name in special:
        return special[name]
    annotation = FIELD_TYPES[name]
    if typing.get_origin(annotation) is typing.Literal:
        return st.sampled_from(typing.get_args(annotation))
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return positive
    if annotation is float:
        return st.floats(0.001, 1.0)
    if annotation is str:
        return st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
    raise AssertionError(f"no strategy for the setting {name!r} ({annotation}); add one to valid_value")


valid_layers = st.lists(st.sampled_from(FIELDS), unique=True, max_size=len(FIELDS)).flatmap(
    lambda keys: st.fixed_dictionaries({k: valid_value(k) for k in keys}))


# -- run configurations -----------------------------------------------------------------------------------------


@SETTINGS
@given(valid_layers)
def test_valid_settings_round_trip_exactly_through_checkpoint_json(layer):
    config = apply_layer(RunConfig(), layer, "test")
    again = RunConfig.from_json(json.loads(config.dumps()))
    # paths and actions are never read from a file: they come back as the defaults, everything else exactly
    expected = dataclasses.replace(config, **{k: getattr(RunConfig(), k) for k in FROM_COMMAND_LINE})
    assert again == expected
    assert again.dumps() == expected.dumps()
    config.validate()  # every value drawn is one a run can use


@SETTINGS
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), json_values, max_size=6))
def test_any_table_of_settings_is_a_config_or_one_config_error(layer):
    try:
        config = apply_layer(RunConfig(), layer, "test")
        config.validate()
    except ConfigError as e:
        assert e.message and "\n" not in str(e)
        return
    defaults = {k: getattr(RunConfig(), k) for k in FROM_COMMAND_LINE}  # never read back from a file
    assert RunConfig.from_json(json.loads(config.dumps())) == dataclasses.replace(config, **defaults)


@SETTINGS
@given(json_values)
def test_checkpoint_config_of_any_shape_is_read_or_refused_with_a_config_error(raw):
    try:
        config = RunConfig.from_json(raw)
    except ConfigError:
        return
    assert RunConfig.from_json(json.loads(config.dumps())) == config


# -- option values ------------------------------------------------------------------------------------------------

ANNOTATIONS = [int, float, bool, str, int | None, float | None, tuple[float, float], list[str],
               typing.Literal["error", "skip"]]


@SETTINGS
@given(st.sampled_from(ANNOTATIONS), json_values | st.text(max_size=20))
def test_coerce_returns_the_declared_type_or_raises_config_error(annotation, value):
    try:
        out = coerce(value, annotation, "x")
    except ConfigError:
        return
    if annotation in (int, float):
        assert type(out) is annotation and not (annotation is float and math.isnan(out))
    elif annotation is bool:
        assert isinstance(out, bool)
    elif annotation is str:
        assert isinstance(out, str)
    elif annotation == tuple[float, float]:
        assert isinstance(out, tuple) and len(out) == 2 and all(type(v) is float for v in out)
    elif annotation == list[str]:
        assert isinstance(out, list) and all(isinstance(v, str) for v in out)


@SETTINGS
@given(st.integers(-(2**80), 2**80))
def test_whole_numbers_survive_as_text_and_as_numbers(n):
    assert coerce(str(n), int, "x") == n == coerce(n, int, "x")


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_survive_their_shortest_text(x):
    assert coerce(repr(x), float, "x") == x


# -- checkpoint metadata ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_metadata(tmp_path_factory) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata of a real checkpoint (written by the trainer's own code path), and a tensor to go with it."""
    from safetensors import safe_open

    from gantoolkit.files.checkpoint import write_checkpoint

    config = RunConfig()
    info = DataInfo("digits", "image", (1, 8, 8), 10, tuple("0123456789"))
    path = tmp_path_factory.mktemp("meta") / "c.safetensors"
    write_checkpoint(path, {"generator.w": torch.zeros(2)}, {
        "kind": "training", "step": "3", "config": config.dumps(), "data": info.to_json(),
        "components": {"arch": {"name": "dcgan", "distribution": "gantoolkit"}}})
    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata()), {"generator.w": torch.zeros(2)}


def write_raw(path: Path, header: bytes, body: bytes = b"") -> Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header + body)
    return path


@SETTINGS
@given(st.binary(max_size=200))
def test_garbage_files_are_refused_with_a_checkpoint_error(tmp_path, data):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


@SETTINGS
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=4), st.binary(max_size=64))
def test_generated_safetensors_headers_are_refused_with_a_checkpoint_error(tmp_path, header, body):
    path = write_raw(tmp_path / "header.safetensors", json.dumps(header).encode(), body)
    with pytest.raises(CheckpointError):
        read_metadata(path)


FIELDS_OF_METADATA = ["format", "format_version", "kind", "step", "config", "data", "components"]


@SETTINGS
@given(st.data())
def test_checkpoints_with_generated_metadata_load_or_raise_checkpoint_error(tmp_path, real_metadata, data):
    meta, tensors = real_metadata
    meta = dict(meta)
    for key in data.draw(st.lists(st.sampled_from(FIELDS_OF_METADATA), unique=True, min_size=1, max_size=3)):
        if data.draw(st.booleans()):
            meta.pop(key)
        else:
            meta[key] = data.draw(st.text(max_size=20) | json_values.map(json.dumps))
    path = tmp_path / "generated.safetensors"
    path.write_bytes(save(tensors, metadata=meta))
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        assert "\n" not in str(e)
        return
    # what loads is usable: every part a command reads has its declared type
    assert isinstance(ckpt.config, RunConfig) and isinstance(ckpt.data, DataInfo)
    assert isinstance(ckpt.components, dict) and isinstance(ckpt.step, int) and ckpt.step >= 0
    ckpt.summary()
