"""BENCHMARKS.md §1: mode collapse on the 2-D ring and grid, beside PacGAN's published Table 1.

For each data set, each method (bce, wgan, wgan-gp with the course's MLP, and the shipped recipe preset, also sampled
with discriminator rejection as `recipe+drs`, i.e. `--sampler drs --critic-steps 2000`, and with critic-gradient
latent refinement as `recipe+refine`, i.e. `--sampler refine --critic-steps 2000`) and each seed: train with
gantoolkit, draw 2,500 samples, and score them by the VEEGAN/PacGAN protocol (modes captured, share of high-quality
samples within 3 std of a mode, reverse KL of the mode histogram to uniform). Prints mean ± standard error over the
seeds beside the published rows, the CPU seconds each run took, and writes JSON.

Each finished run is appended to `results/toy2d.runs.jsonl`, so an interrupted benchmark resumes where it stopped
(`--fresh` starts over). Run with OMP_NUM_THREADS=1 on a shared machine:

    OMP_NUM_THREADS=1 python benchmarks/toy2d.py --seeds 5
    OMP_NUM_THREADS=1 python benchmarks/toy2d.py --datasets ring --methods recipe --seeds 5
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
SAMPLES = 2500
#: `--critic-steps 2000`: the critic is trained on for 2,000 steps before it rejects (drs) or is climbed (refine)
CRITIC_STEPS = 2000
#: the samplers each recipe run is also drawn with (`recipe+drs`, `recipe+refine`)
SAMPLERS = ("drs", "refine")

#: PacGAN Table 1 (10 trials): modes / high-quality share / reverse KL
PUBLISHED: dict[str, dict[str, tuple[float, float, float]]] = {
    "ring": {"GAN": (6.3, 0.982, 0.45), "ALI": (6.6, 0.976, 0.36), "PacGAN2": (7.9, 0.956, 0.07),
             "PacGAN3": (7.8, 0.977, 0.10), "PacGAN4": (7.8, 0.959, 0.07)},
    "grid": {"GAN": (17.3, 0.948, 0.70), "ALI": (24.1, 0.957, 0.14), "PacGAN2": (23.8, 0.913, 0.13),
             "PacGAN3": (24.6, 0.942, 0.06), "PacGAN4": (24.8, 0.936, 0.04)},
}

#: the course's vanilla GAN on 2-D data, the same for every loss (each loss keeps its own optimizer and n_critic)
#: `g_batch` "reuse" (the generator step on the critic's last fakes), as every recorded run was trained
BASELINE = {"arch": {"name": "mlp", "hidden_dim": 64, "g_depth": 3, "d_depth": 3}, "latent_dim": 8,
            "batch_size": 256, "g_batch": "reuse"}


def method_layer(method: str, dataset: str, steps: int) -> dict[str, Any]:
    """The run configuration of one method (the recipe is the shipped preset, unchanged)."""
    from gantoolkit.builtin.configs import PRESETS

    if method == "recipe":
        return dict(PRESETS[f"toy-{dataset}"][1])
    return {**BASELINE, "data": f"toy:{dataset}", "loss": method, "cond": "none", "steps": steps}


def run_one(method: str, dataset: str, seed: int, steps: int, keep: Path | None) -> dict[str, Any]:
    """Train one run and score it; returns the record written to the runs file."""
    import torch
    from rich.console import Console

    from gantoolkit.builtin.metrics.mixture import mixture_scores
    from gantoolkit.config import RunConfig, apply_layer
    from gantoolkit.sampling.generator import load_generator
    from gantoolkit.training.run import train

    layer = {**method_layer(method, dataset, steps), "seed": seed, "device": "cpu", "track": [],
             "sample_every": 10**9, "checkpoint_every": 10**9, "log_every": 10**9}
    config = apply_layer(RunConfig(), layer, f"toy2d {method}")
    root = Path(tempfile.mkdtemp(prefix=f"toy2d-{dataset}-{method}-{seed}-", dir=keep))
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    with open(root / "train.log", "w") as log:
        run = train(config, root / "run", Console(file=log))
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    model = load_generator(run)
    samples, _ = model.sample(SAMPLES, seed=10_000 + seed)
    extra = model.data.extra
    scores = mixture_scores(samples, torch.tensor(extra["modes"]), float(extra["std"]))
    return {"dataset": dataset, "method": method, "seed": seed, "steps": config.steps, **scores,
            "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "run": str(run)}


def sampled_scores(run: str, seed: int, sampler: str) -> dict[str, Any] | None:
    """The recipe's run drawn with `--sampler drs` or `--sampler refine` (its defaults), `--critic-steps 2000`."""
    import torch

    from gantoolkit.builtin.metrics.mixture import mixture_scores
    from gantoolkit.sampling.generator import load_generator
    from gantoolkit.sampling.samplers import create_sampler, setup_sampler

    if not Path(run).is_dir():
        return None
    model = load_generator(run)
    start = time.process_time()
    draw = setup_sampler(create_sampler(sampler, critic_steps=CRITIC_STEPS), model, seed)
    samples, _ = draw(SAMPLES, 10_000 + seed)  # refine moves the very latents of the plain recipe row
    extra = model.data.extra
    scores = mixture_scores(samples, torch.tensor(extra["modes"]), float(extra["std"]))
    scores["critic_steps"] = CRITIC_STEPS
    if sampler == "drs":
        scores["acceptance"] = round(draw.sampler.accepted / draw.sampler.drawn, 4)
    else:
        scores.update(refine_steps=draw.refine_steps, refine_rate=draw.refine_rate)
    return {**scores, "cpu_s": round(time.process_time() - start, 1)}


def add_sampler_rows(records: list[dict[str, Any]]) -> None:
    """`recipe+drs` and `recipe+refine` records beside every recipe run whose directory is still there."""
    from gantoolkit.evaluation import MetricError

    for sampler in SAMPLERS:
        method = f"recipe+{sampler}"
        have = {(r["dataset"], r["seed"]) for r in records if r["method"] == method}
        for r in [r for r in records if r["method"] == "recipe" and (r["dataset"], r["seed"]) not in have]:
            start = time.process_time()
            try:
                scores = sampled_scores(r["run"], r["seed"], sampler)
            except MetricError as e:  # the critic accepts too few samples: recorded as a failure, not left out
                scores = {"modes": None, "hq": None, "rkl": None, "failed": e.message,
                          "cpu_s": round(time.process_time() - start, 1)}
            if scores is None:
                continue
            record = {**r, **scores, "method": method, "cpu_s": r["cpu_s"] + scores["cpu_s"]}
            print(json.dumps(record), flush=True)
            with open(RESULTS / "toy2d.runs.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")
            records.append(record)


def mean_se(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    se = statistics.stdev(finite) / math.sqrt(len(finite)) if len(finite) > 1 else 0.0
    return statistics.fmean(finite), se


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    seen: set[tuple[str, str, int]] = set()
    for r in records:
        key = (r["dataset"], r["method"], r["seed"])
        if key in seen:  # two benchmark processes may both add a drs or refine row for one run
            continue
        seen.add(key)
        out.setdefault(r["dataset"], {}).setdefault(r["method"], {"runs": []})["runs"].append(r)
    for methods in out.values():
        for row in methods.values():
            runs = row["runs"]
            for key in ("modes", "hq", "rkl", "cpu_s"):
                row[key], row[f"{key}_se"] = mean_se([r[key] for r in runs])
            if all("acceptance" in r for r in runs):
                row["acceptance"], row["acceptance_se"] = mean_se([r["acceptance"] for r in runs])
            row["seeds"] = len(runs)
            row["failed"] = sum("failed" in r for r in runs)
            row["steps"] = runs[0]["steps"]
            row["every_mode"] = sum(r["modes"] == (8 if r["dataset"] == "ring" else 25) for r in runs)
    return out


def table(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = []
    for dataset in ("ring", "grid"):
        if dataset not in summary:
            continue
        total = 8 if dataset == "ring" else 25
        lines.append(f"\n{dataset} ({total} modes): modes / high quality / reverse KL, mean ± s.e.")
        lines.append(f"| {'method':<44} | {'modes':>12} | {'high quality':>15} | {'reverse KL':>13} | "
                     f"{'all modes':>9} | {'CPU s/run':>9} |")
        lines.append("|" + "|".join("-" * w for w in (46, 14, 17, 15, 11, 11)) + "|")
        order = ["bce", "wgan", "wgan-gp", "recipe", "recipe+drs", "recipe+refine"]
        for method, row in sorted(summary[dataset].items(), key=lambda kv: (kv[0] not in order, order.index(kv[0])
                                                                            if kv[0] in order else 0, kv[0])):
            label = f"gantoolkit {method} ({row['steps']} st)"
            if row["failed"]:  # the means are over the runs that did not fail
                label += f" {row['failed']}/{row['seeds']} failed"
            lines.append(
                f"| {label:<44} | {row['modes']:5.2f} ± {row['modes_se']:4.2f} | "
                f"{100 * row['hq']:6.1f}% ± {100 * row['hq_se']:4.1f} | {row['rkl']:5.3f} ± {row['rkl_se']:5.3f} | "
                f"{row['every_mode']:>4}/{row['seeds']:<4} | {row['cpu_s']:9.0f} |")
        for name, (modes, hq, rkl) in PUBLISHED[dataset].items():
            label = f"published {name}"
            lines.append(f"| {label:<44} | {modes:12.1f} | {100 * hq:14.1f}% | {rkl:13.2f} | {'':>9} | {'GPU':>9} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds FIRST..SEEDS-1 (to split them)")
    parser.add_argument("--datasets", default="ring,grid")
    parser.add_argument("--methods", default="bce,wgan,wgan-gp,recipe")
    parser.add_argument("--steps", type=int, default=2000, help="generator steps of the bce/wgan/wgan-gp runs")
    parser.add_argument("--fresh", action="store_true", help="ignore runs already recorded")
    parser.add_argument("--keep", type=Path, default=None, help="keep run directories under this folder")
    parser.add_argument("--table-only", action="store_true", help="print the table of the recorded runs (adding "
                        "the drs and refine rows of recipe runs whose directories were kept)")
    args = parser.parse_args()

    RESULTS.mkdir(parents=True, exist_ok=True)
    runs_file = RESULTS / "toy2d.runs.jsonl"
    records = [] if args.fresh or not runs_file.exists() else \
        [json.loads(line) for line in runs_file.read_text().splitlines() if line.strip()]
    if args.table_only:
        add_sampler_rows(records)
    else:
        done = {(r["dataset"], r["method"], r["seed"]) for r in records}
        # seed-major, so an interrupted benchmark has every method for seed 0 first
        for seed in range(args.first_seed, args.seeds):
            for dataset in args.datasets.split(","):
                for method in args.methods.split(","):
                    if (dataset, method, seed) in done:
                        continue
                    record = run_one(method, dataset, seed, args.steps, args.keep)
                    print(json.dumps(record), flush=True)
                    with open(runs_file, "a") as fh:
                        fh.write(json.dumps(record) + "\n")
                    records.append(record)
    add_sampler_rows(records)
    summary = summarise(records)
    print(table(summary))
    slim = {d: {m: {k: v for k, v in row.items() if k != "runs"} for m, row in methods.items()}
            for d, methods in summary.items()}
    out = {"protocol": "BENCHMARKS.md §1 (PacGAN Table 1): 2,500 samples, high quality within 3 std",
           "baseline": BASELINE, "published": PUBLISHED, "results": slim}
    (RESULTS / "toy2d.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"\nwrote {RESULTS / 'toy2d.json'}")


if __name__ == "__main__":
    main()
