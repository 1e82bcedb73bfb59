"""The shipped mode-collapse recipes load, name what they use, and train (a few steps here; the full-length numbers
come from benchmarks/toy2d.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gantoolkit.builtin.configs import PRESETS


@pytest.mark.parametrize("name, data", [("toy-ring", "toy:ring"), ("toy-grid", "toy:grid")])
def test_recipe_presets_load_and_train(cli, name, data):
    values = PRESETS[name][1]
    assert values["data"] == data and values["arch"]["name"] == "pac" and values["arch"]["pack"] > 1
    result = cli("train", "--config", name, "--steps", "4", "--track-every", "2", "--data-opt", "n=4000",
                 "--arch-opt", "hidden_dim=8", "--out", "run")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4] and all("modes" in r and "hq" in r for r in lines)
    info = json.loads(cli("info", "run", "--json").output)
    assert info["arch"]["name"] == "pac" and info["data"]["source"] == data
    result = cli("evaluate", "run", "--metrics", "modes,hq,rkl", "--sampler", "refine", "--out", "report.json")
    assert result.exit_code == 0, result.output
    assert json.loads(Path("report.json").read_text())["meta"]["sampler"].startswith("refine")


def test_pac_critic_scores_packs_and_refuses_ragged_batches():
    import torch

    from gantoolkit.builtin.packing.pac import Pac
    from gantoolkit.components import ModelSpec
    from gantoolkit.data import VECTOR, DataInfo
    from gantoolkit.errors import ConfigError

    info = DataInfo("t", VECTOR, (2,))
    _, d = Pac(base="mlp", pack=3, hidden_dim=8).build(ModelSpec(info, 4, 4, (2,)))
    x = torch.randn(6, 2)
    scores = d(x)
    assert scores.shape == (6,) and torch.equal(scores[0:3], scores[0].expand(3))  # one score per pack of 3
    x2 = x.clone()
    x2[1] += 1.0  # changing one member changes its pack's score only
    changed = d(x2)
    assert not torch.equal(changed[:3], scores[:3]) and torch.equal(changed[3:], scores[3:])
    with pytest.raises(ConfigError, match="cannot be cut into packs of 3"):
        d(torch.randn(4, 2))
    with pytest.raises(ConfigError, match="pack must be at least 1"):
        Pac(pack=0)



def test_the_digits_modern_preset_trains_the_recipe_it_names(cli):
    from gantoolkit.files.checkpoint import load_checkpoint

    result = cli("train", "--config", "digits-modern", "--steps", "3", "--arch-opt", "ngf=8", "--arch-opt", "ndf=8",
                 "--out", "modern")
    assert result.exit_code == 0, result.output
    info = json.loads(cli("info", "modern", "--json").output)
    assert info["loss"] == {"name": "rpgan", "options": {"lazy_every": 4, "r1": 0.1, "r2": 0.1}}
    assert info["cond"]["name"] == "acgan" and info["data"]["source"] == "digits"
    assert info["data"]["shape"] == [1, 16, 16]  # the digits' recommended size
    config = load_checkpoint(next(Path("modern/checkpoints").glob("*.safetensors"))).config
    assert (config.ema, config.lr_decay, config.steps) == (0.99, 0.5, 3)


def test_the_stacked_digits_preset_trains_unconditionally_and_is_evaluated_on_the_protocols_metrics(cli, tmp_path,
                                                                                                  monkeypatch):
    monkeypatch.setenv("GANTOOL_CACHE", str(tmp_path / "cache"))
    result = cli("train", "--config", "stacked-digits-modern", "--steps", "2", "--arch-opt", "ngf=8", "--arch-opt",
                 "ndf=8", "--out", "stacked")
    assert result.exit_code == 0, result.output
    info = json.loads(cli("info", "stacked", "--json").output)
    assert info["loss"] == {"name": "rpgan", "options": {"lazy_every": 4, "r1": 0.1, "r2": 0.1}}
    assert info["cond"]["name"] == "none" and info["data"]["source"] == "stacked-digits"
    assert info["data"]["shape"] == [3, 16, 16] and info["data"]["num_classes"] in (0, None)
    result = cli("evaluate", "stacked", "--metrics", "stacked_modes,stacked_kl", "--n", "2000", "--out", "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads(Path("r.json").read_text())
    assert 1 <= report["stacked_modes"] <= 1000 and report["stacked_kl"] > report["stacked_kl_real"]
