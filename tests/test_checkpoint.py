"""Checkpoints: self-describing safetensors, atomic writes, and refusal of anything else."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from gantoolkit.errors import CheckpointError, UnknownComponentError
from gantoolkit.files.checkpoint import (
    atomic_write,
    load_checkpoint,
    missing_plugin_error,
    optimizer_from_tensors,
    optimizer_to_tensors,
    read_metadata,
    write_checkpoint,
)
from gantoolkit.files.runs import list_checkpoints, resolve_checkpoint


class Boom:
    """Unpickling this would create a marker file: proof that the file was executed."""

    marker = None

    def __reduce__(self):
        return (open, (str(Boom.marker), "w"))


def newest(run):
    return list_checkpoints(run)[-1][1]


def test_metadata_describes_the_run(tiny_run):
    ckpt = load_checkpoint(newest(tiny_run))
    assert ckpt.kind == "training" and ckpt.step == 6
    assert ckpt.config.arch.name == "dcgan"
    assert ckpt.config.arch.options == {"ngf": 8, "ndf": 8, "critic_norm": "auto", "upsample": "transpose"}
    # the digits' recommended bce schedule (R1 1, EMA) fills what the command line left out
    assert ckpt.config.loss.options == {"generator_loss": "non-saturating", "label_smoothing": 0.0, "r1": 1.0,
                                        "r2": 0.0}
    assert ckpt.config.cond.name == "onehot"
    assert ckpt.data.shape == (1, 8, 8) and ckpt.data.class_names == tuple("0123456789")
    assert ckpt.components["loss"]["distribution"] == "gantoolkit"
    assert ckpt.components["data"]["name"] == "digits"
    prefixes = {k.split(".")[0] for k in ckpt.tensors}
    assert prefixes == {"generator", "critic", "ema", "optim", "rng"}
    assert ckpt.meta["format"] == "gantoolkit" and ckpt.meta["format_version"] == "1"


def test_run_directory_resolves_to_its_newest_checkpoint(tiny_run):
    assert resolve_checkpoint(tiny_run).name == "step-00000006.safetensors"
    (tiny_run / "checkpoints" / ".step-00000009.safetensors.123.tmp").write_bytes(b"partial")
    assert resolve_checkpoint(tiny_run).name == "step-00000006.safetensors"


def test_pickle_disguised_as_checkpoint_is_rejected_without_running(tmp_path):
    Boom.marker = tmp_path / "executed"
    for name in ("evil.safetensors", "evil.pt"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps(Boom()))
        with pytest.raises(CheckpointError, match="never unpickles"):
            load_checkpoint(path)
    torch_file = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, torch_file)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(torch_file)
    assert not Boom.marker.exists()


def test_foreign_truncated_empty_and_missing_files(tmp_path, tiny_run):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a gantoolkit checkpoint"):
        load_checkpoint(foreign)
    data = newest(tiny_run).read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(truncated)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(empty)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "future.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"format": "gantoolkit", "format_version": "99"})
    with pytest.raises(CheckpointError, match="upgrade gantoolkit"):
        read_metadata(path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "ckpt.safetensors"
    target.write_bytes(b"old and good")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", full_disk)
    with pytest.raises(CheckpointError, match="No space left"):
        write_checkpoint(target, {"w": torch.ones(2)}, {"step": "1"})
    assert target.read_bytes() == b"old and good"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]  # no temporary file left behind


def test_atomic_write_replaces_in_one_step(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"


def test_optimizer_state_round_trips_exactly():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = optimizer_to_tensors("optim.g", opt.state_dict())
    meta = json.loads(json.dumps(meta))
    fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    fresh.load_state_dict(optimizer_from_tensors("optim.g", tensors, meta))
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"] == 1e-3
    for index, state in a["state"].items():
        for key, value in state.items():
            assert torch.equal(value, b["state"][index][key])


def test_missing_plugin_error_names_what_to_install(tiny_run):
    ckpt = load_checkpoint(newest(tiny_run))
    ckpt.components["loss"] = {"name": "hinge", "plugin": "sngan", "distribution": "gantool-sngan", "version": "0.3"}
    error = missing_plugin_error(ckpt, UnknownComponentError("unknown loss 'hinge'"))
    assert "pip install gantool-sngan" in str(error) and "0.3" in str(error)


def test_an_installed_but_unloaded_plugin_is_not_told_to_pip_install(tiny_run):
    """Disabled (GANTOOL_DISABLE_PLUGINS) or broken: installing it again would not help."""
    ckpt = load_checkpoint(newest(tiny_run))
    ckpt.components["loss"] = {"name": "hinge", "plugin": "x", "distribution": "pytest", "version": "1.0"}
    error = missing_plugin_error(ckpt, UnknownComponentError("unknown loss 'hinge'"))
    assert "installed but was not loaded" in str(error) and "pip install" not in str(error)
    assert "GANTOOL_DISABLE_PLUGINS" in str(error) and "gantool plugins" in str(error)


@pytest.mark.parametrize("header_length", [640, 896, 1152, 1408])
def test_a_header_length_that_starts_like_a_pickle_is_still_safetensors(tmp_path, header_length):
    """A safetensors file starts with its header length: 640 is the bytes 80 02, a pickle's magic number."""
    from safetensors.torch import save

    meta = {"format": "gantoolkit", "format_version": "1", "step": "3", "config": "{}", "components": "{}",
            "data": json.dumps({"source": "digits", "modality": "image", "shape": [1, 8, 8]})}
    tensors = {"generator.w": torch.zeros(1)}
    payload = next(
        blob for pad in range(header_length)
        if int.from_bytes((blob := save(tensors, metadata={**meta, "pad": "x" * pad}))[:8], "little") == header_length
    )
    path = tmp_path / "odd.safetensors"
    path.write_bytes(payload)
    assert payload[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
    assert load_checkpoint(path).step == 3


def with_saved_options(source, target, options):
    """A copy of a checkpoint whose saved configuration holds `options` (per component) instead of its own."""
    with safe_open(str(source), framework="pt") as fh:
        metadata = dict(fh.metadata())
    config = json.loads(metadata["config"])
    for key, value in options.items():
        config[key]["options"] = value
    metadata["config"] = json.dumps(config)
    save_file(load_file(str(source)), str(target), metadata=metadata)


def test_a_checkpoint_records_every_option_and_one_that_records_none_still_samples_and_resumes(cli, tmp_path):
    """Every option's value is saved, defaults included; a checkpoint written before that (options {}) means the
    factory's defaults: it samples the same and resumes to the same weights, and then records them."""
    run = ["train", "--arch", "mlp", "--data", "toy:ring", "--loss", "bce", "--cond", "none", "--batch-size", "16",
           "--latent-dim", "4", "--steps", "4", "--checkpoint-every", "2", "--device", "cpu", "--out", "run"]
    assert cli(*run).exit_code == 0
    info = json.loads(cli("info", "run/checkpoints/step-00000002.safetensors", "--json").stdout)
    assert info["arch"]["options"] == {"hidden_dim": 128, "g_depth": 4, "d_depth": 3}
    assert info["loss"]["options"] == {"generator_loss": "non-saturating", "label_smoothing": 0.0, "r1": 0.0,
                                       "r2": 0.0}
    assert load_checkpoint(tmp_path / "run/checkpoints/step-00000002.safetensors").config.data.options == {"n": 100000}
    checkpoints = tmp_path / "run" / "checkpoints"
    finished = load_file(str(checkpoints / "step-00000004.safetensors"))
    assert cli("sample", checkpoints / "step-00000002.safetensors", "--n", "8", "--out", "new.npz").exit_code == 0
    old = tmp_path / "old.safetensors"
    none = {k: {} for k in ("arch", "loss", "cond", "data")}
    with_saved_options(checkpoints / "step-00000002.safetensors", old, none)
    assert load_checkpoint(old).config.arch.options == {}
    assert cli("sample", old, "--n", "8", "--out", "old.npz").exit_code == 0
    assert (np.load("old.npz")["points"] == np.load("new.npz")["points"]).all()
    (checkpoints / "step-00000004.safetensors").unlink()
    old.replace(checkpoints / "step-00000002.safetensors")
    resumed = cli("train", "--resume", "run")
    assert resumed.exit_code == 0, resumed.output
    again = load_file(str(checkpoints / "step-00000004.safetensors"))
    assert finished.keys() == again.keys() and all(torch.equal(finished[k], again[k]) for k in finished)
    info = json.loads(cli("info", "run", "--json").stdout)
    assert info["arch"]["options"] == {"hidden_dim": 128, "g_depth": 4, "d_depth": 3}
