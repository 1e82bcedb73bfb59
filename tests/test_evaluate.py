"""`gantool evaluate` end to end on tiny real runs, and mode coverage tracked while training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image
from safetensors.torch import load_file

from tests.conftest import TINY_DCGAN

TOY = ["--arch", "mlp", "--arch-opt", "hidden_dim=16", "--data", "toy:ring", "--data-opt", "n=2000",
       "--batch-size", "64", "--latent-dim", "4"]


def train_run(out: Path, *args: str) -> Path:
    """Train in-process with the real CLI (module-scoped fixtures cannot use the `cli` fixture)."""
    from typer.testing import CliRunner

    from gantoolkit.cli import build_app
    from gantoolkit.registry import reset_registry

    reset_registry()
    result = CliRunner().invoke(build_app(), ["train", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("toy") / "run", *TOY, "--steps", "40", "--log-every", "20")


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory) -> dict[str, Path]:
    """A conditional DCGAN on 8x8 digits trained for 600 steps, and the same barely trained (2 steps)."""
    root = tmp_path_factory.mktemp("digits")
    args = [*TINY_DCGAN, "--loss", "bce", "--cond", "onehot", "--image-size", "8", "--log-every", "100",
            "--sample-every", "1000", "--checkpoint-every", "1000"]
    return {"good": train_run(root / "good", *args, "--steps", "600"),
            "barely": train_run(root / "barely", *args, "--steps", "2")}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def cached(cache_dir, monkeypatch) -> Path:
    monkeypatch.setenv("GANTOOL_CACHE", str(cache_dir))
    return cache_dir


def report(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_evaluate_a_toy_run_writes_a_flat_json_report_and_a_table(cli, toy_run):
    result = cli("evaluate", toy_run, "--n", "600", "--out", "report.json")
    assert result.exit_code == 0, result.output
    data = report("report.json")
    metrics = {k: v for k, v in data.items() if k != "meta"}
    assert {"modes", "hq", "rkl", "fd", "kid", "precision", "recall", "density", "coverage"} <= set(metrics)
    assert all(v is None or isinstance(v, (int, float)) for v in metrics.values())
    assert isinstance(data["modes"], int) and 0 <= data["modes"] <= 8 and 0 <= data["hq"] <= 1
    meta = data["meta"]
    assert meta["n"] == 600 and meta["step"] == 40 and meta["data"] == "toy:ring"
    assert meta["features"].startswith("raw") and "nn" in meta["skipped"] and "cond-acc" in meta["skipped"]
    assert "modes" in result.output and "wrote report.json" in result.output
    # a seed names the same samples: the report repeats exactly
    assert cli("evaluate", toy_run, "--n", "600", "--metrics", "modes,hq,rkl,fd", "--out", "again.json").exit_code == 0
    assert {k: report("again.json")[k] for k in ("modes", "hq", "rkl", "fd")} == \
        {k: data[k] for k in ("modes", "hq", "rkl", "fd")}


def test_evaluate_refuses_bad_input_with_one_line_and_writes_nothing(cli, toy_run):
    one_line_error(cli("evaluate", toy_run, "--metrics", "modes,precison", "--out", "r.json"),
                   "unknown metric 'precison'", "precision")
    one_line_error(cli("evaluate", toy_run, "--data", "digits", "--out", "r.json"),
                   "the model makes vector samples of shape (2,)", "--data toy:ring")
    one_line_error(cli("evaluate", toy_run, "--metrics", "nn", "--out", "r.json"), "metric 'nn' does not apply")
    one_line_error(cli("evaluate", toy_run, "--features", "incepton:x", "--out", "r.json"), "unknown --features")
    one_line_error(cli("evaluate", toy_run, "--out", "r.txt"), "must be a .json file")
    one_line_error(cli("evaluate", "no-such-run", "--out", "r.json"), "does not exist")
    assert not Path("r.json").exists()


def test_unlabelled_images_need_explicit_features(cli):
    assert cli("train", *TINY_DCGAN, "--data", "fake:1x8x8", "--steps", "2", "--out", "noise").exit_code == 0
    one_line_error(cli("evaluate", "noise", "--metrics", "fd", "--n", "64", "--out", "r.json"),
                   "unlabelled images have no automatic feature space", "--features classifier:PATH")
    result = cli("evaluate", "noise", "--metrics", "fd,precision", "--features", "raw", "--n", "64", "--out", "r.json")
    assert result.exit_code == 0, result.output
    assert report("r.json")["meta"]["features"].startswith("raw") and report("r.json")["fd"] > 0


def test_a_trained_digits_generator_beats_a_barely_trained_one(cli, digits_runs, cached):
    results = {}
    for name, run in digits_runs.items():
        result = cli("evaluate", run, "--n", "1000", "--metrics", "fd,coverage,precision,classes,cond_acc,nn",
                     "--out", f"{name}.json")
        assert result.exit_code == 0, result.output
        results[name] = report(f"{name}.json")
    good, barely = results["good"], results["barely"]
    assert good["fd"] < barely["fd"] and good["coverage"] > barely["coverage"]
    assert good["cond_acc"] > barely["cond_acc"] and good["classes"] >= barely["classes"]
    # the classifier behind the features was trained once, cached in GANTOOL_CACHE, and reused
    assert len(list((cached / "classifiers").glob("*.safetensors"))) == 1
    assert "held-out accuracy" in barely["meta"]["classifier"] or "held-out accuracy" in good["meta"]["classifier"]
    assert "cached" in results["barely"]["meta"]["classifier"]
    # a classifier given by path is the same feature space
    saved = next((cached / "classifiers").glob("*.safetensors"))
    result = cli("evaluate", digits_runs["barely"], "--n", "1000", "--metrics", "fd", "--features",
                 f"classifier:{saved}", "--out", "given.json")
    assert result.exit_code == 0, result.output
    assert report("given.json")["fd"] == pytest.approx(barely["fd"], rel=1e-4)
    assert str(saved) in report("given.json")["meta"]["features"]
    # the memorisation check: a grid of samples beside their nearest training images, and distance statistics
    grid = Image.open(good["meta"]["artefacts"]["nn"])
    assert grid.size == (6 * 10 + 2, 8 * 10 + 2)  # 8 rows: a sample, then its 5 nearest training images (8 px + pad)
    assert good["nn_dist"] > 0 and math.isclose(good["nn_ratio"], good["nn_dist"] / good["nn_dist_real"], rel_tol=1e-4)


def test_class_coverage_is_tracked_on_labelled_images(cli, cached):
    """Uses the classifier cached by the test above (the same digits at 8x8), or trains it when run alone."""
    result = cli("train", *TINY_DCGAN, "--image-size", "8", "--steps", "2", "--track", "classes,class_kl",
                 "--track-every", "1", "--track-n", "100", "--out", "run")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    assert all(1 <= r["classes"] <= 10 and r["class_kl"] >= 0 for r in lines)


def test_conditional_accuracy_refuses_unconditional_models(cli, toy_run):
    one_line_error(cli("evaluate", toy_run, "--metrics", "cond_acc", "--out", "r.json"), "unconditional")


# -- tracking while training ------------------------------------------------------------------------------------------


def test_mode_coverage_is_logged_while_training_and_changes_nothing_else(cli):
    tracked = cli("train", *TOY, "--steps", "12", "--log-every", "12", "--track", "modes,hq,rkl",
                  "--track-every", "4", "--out", "tracked")
    assert tracked.exit_code == 0, tracked.output
    lines = [json.loads(line) for line in Path("tracked/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [4, 8, 12]
    assert all("modes" in r and "hq" in r and "loss_d" in r for r in lines)
    plain = cli("train", *TOY, "--steps", "12", "--log-every", "12", "--out", "plain")
    assert plain.exit_code == 0, plain.output
    a = load_file("tracked/checkpoints/step-00000012.safetensors")
    b = load_file("plain/checkpoints/step-00000012.safetensors")
    assert all((a[k] == b[k]).all() for k in a if k.startswith(("generator.", "critic.")))


def test_tracking_errors(cli):
    one_line_error(cli("train", *TOY, "--steps", "2", "--track", "mode", "--out", "x"), "unknown metric 'mode'")
    assert not Path("x").exists()
    one_line_error(cli("train", *TOY, "--steps", "2", "--track", "nn", "--out", "y"), "--track nn", "needs images")


def test_discriminator_rejection_sampling_is_a_named_sampler(cli, toy_run):
    result = cli("evaluate", toy_run, "--metrics", "modes,hq,rkl", "--n", "300", "--sampler", "drs", "--out", "d.json")
    assert result.exit_code == 0, result.output
    meta = report("d.json")["meta"]
    assert meta["sampler"].startswith("drs") and "acceptance" in meta["sampler"]
    assert cli("export", toy_run, "--out", "g.safetensors").exit_code == 0
    one_line_error(cli("evaluate", "g.safetensors", "--sampler", "drs", "--out", "e.json"), "needs the critic")
    one_line_error(cli("evaluate", toy_run, "--sampler", "mh", "--out", "e.json"), "unknown sampler 'mh'")


def test_drs_steps_train_the_critic_on_and_repeat_exactly(cli, toy_run):
    args = ["evaluate", toy_run, "--metrics", "modes,hq,rkl", "--n", "300", "--sampler", "drs", "--drs-steps", "30"]
    assert cli(*args, "--out", "a.json").exit_code == 0
    assert cli(*args, "--out", "b.json").exit_code == 0
    a, b = report("a.json"), report("b.json")
    assert "trained on for 30 steps" in a["meta"]["sampler"]
    assert {k: v for k, v in a.items() if k != "meta"} == {k: v for k, v in b.items() if k != "meta"}
    one_line_error(cli("evaluate", toy_run, "--drs-steps", "5", "--out", "c.json"),
                   "--critic-steps does not apply to --sampler plain (its options: none)")


def test_drs_training_makes_the_critic_a_real_vs_generated_classifier(toy_run):
    import torch

    from gantoolkit.evaluation import load_matching_data
    from gantoolkit.sampling.drs import RejectionSampler
    from gantoolkit.sampling.generator import load_generator

    model = load_generator(toy_run)
    real = load_matching_data(model, None)
    fake, _ = model.sample(500, seed=7)

    def separation(sampler: RejectionSampler) -> float:
        return float(sampler.scores(real.data[:500], None).mean() - sampler.scores(fake, None).mean())

    before = separation(RejectionSampler(model, 0))
    tuned = RejectionSampler(load_generator(toy_run), 0, 300, (real.data, real.labels))
    assert separation(tuned) > before + 1.0
    assert not any(p.requires_grad for p in tuned.critic.parameters())
    assert torch.equal(tuned.scores(fake, None), tuned.scores(fake, None))


def test_refine_moves_only_the_latents_up_the_critic_and_repeats_exactly(cli, toy_run):
    import torch

    from gantoolkit.sampling.generator import load_generator
    from gantoolkit.sampling.samplers import create_sampler, setup_sampler

    args = ["evaluate", toy_run, "--metrics", "modes,hq,rkl", "--n", "300", "--sampler", "refine",
            "--refine-steps", "5"]
    assert cli(*args, "--out", "a.json").exit_code == 0
    assert cli(*args, "--out", "b.json").exit_code == 0
    a, b = report("a.json"), report("b.json")
    assert a["meta"]["sampler"].startswith("refine") and "5 steps of rate 0.01" in a["meta"]["sampler"]
    assert {k: v for k, v in a.items() if k != "meta"} == {k: v for k, v in b.items() if k != "meta"}

    model = load_generator(toy_run)
    refiner = setup_sampler(create_sampler("refine"), model, seed=0)
    plain, _ = model.sample(500, seed=4)
    refined, _ = refiner(500, 4)
    before, after = refiner.sampler.scores(plain, None), refiner.sampler.scores(refined, None)
    assert (after > before).float().mean() > 0.9 and after.mean() > before.mean()
    barely, _ = setup_sampler(create_sampler("refine", ["refine_steps=1", "refine_rate=1e-7"]), model)(500, 4)
    assert torch.allclose(barely, plain, atol=1e-4)  # the same latents as plain sampling, hardly moved

    tuned = ["evaluate", toy_run, "--metrics", "modes,hq,rkl", "--n", "300", "--sampler", "refine",
             "--critic-steps", "30"]
    assert cli(*tuned, "--out", "t.json").exit_code == 0
    assert cli(*tuned, "--out", "u.json").exit_code == 0
    t, u = report("t.json"), report("u.json")
    assert "critic trained on for 30 steps" in t["meta"]["sampler"]
    assert {k: v for k, v in t.items() if k != "meta"} == {k: v for k, v in u.items() if k != "meta"}

    one_line_error(cli("evaluate", toy_run, "--sampler", "refine", "--refine-steps", "0", "--out", "c.json"),
                   "--refine-steps must be at least 1")
    one_line_error(cli("sample", toy_run, "--sampler", "refine", "--refine-rate", "-1", "--out", "c.npz"),
                   "--refine-rate must be positive")
    assert cli("export", toy_run, "--out", "g.safetensors").exit_code == 0
    one_line_error(cli("sample", "g.safetensors", "--sampler", "refine", "--out", "c.npz"), "refine needs the critic")


def test_refine_keeps_the_class_asked_for(cli, digits_runs):
    from gantoolkit.sampling.generator import load_generator
    from gantoolkit.sampling.samplers import create_sampler, setup_sampler

    model = load_generator(digits_runs["good"])
    images, labels = setup_sampler(create_sampler("refine"), model, class_index=3)(20, 0)
    plain, _ = model.sample(20, 0, class_index=3)
    assert images.shape == plain.shape and (labels == 3).all()
    assert not (images == plain).all() and images.abs().max() <= 1
    result = cli("sample", digits_runs["good"], "--sampler", "refine", "--class", "3", "--n", "8", "--out", "r.png")
    assert result.exit_code == 0 and Path("r.png").is_file()


def test_gantool_sample_draws_with_discriminator_rejection(cli, toy_run):
    import numpy as np

    args = ["sample", toy_run, "--n", "200", "--sampler", "drs", "--drs-steps", "20", "--seed", "3"]
    assert cli(*args, "--out", "a.npz").exit_code == 0
    assert cli(*args, "--out", "b.npz").exit_code == 0
    plain = cli("sample", toy_run, "--n", "200", "--seed", "3", "--out", "p.npz")
    assert plain.exit_code == 0
    a, b, p = (np.load(f)["points"] for f in ("a.npz", "b.npz", "p.npz"))
    assert a.shape == (200, 2) and (a == b).all() and not (a == p).all()
    one_line_error(cli("sample", toy_run, "--sampler", "mh", "--out", "c.npz"), "unknown sampler 'mh'")
    one_line_error(cli("sample", toy_run, "--drs-steps", "3", "--out", "c.npz"), "does not apply to --sampler plain")
    one_line_error(cli("sample", toy_run, "--sampler", "drs", "--sampler-opt", "refine_steps=3", "--out", "c.npz"),
                   "sampler 'drs' has no option 'refine_steps'")
    one_line_error(cli("sample", toy_run, "--sampler", "drs", "--truncation", "1", "--out", "c.npz"), "whole model")
