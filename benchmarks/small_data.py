"""Issue 16: small data. 10% of the digits (180 images, `--data-opt per_class=18`, drawn at random with
`subset_seed`, as 10% of CIFAR-10 is a random 10%), trained without augmentation, with `diffaug` and with `ada`,
several seeds; each final EMA generator judged by the SVC (cond-acc) and by the Fréchet distance to all 1,797 real
digits in the judge's features (so a generator that only reproduces its 180 training images pays for it), with the
real-vs-real floor and the FD of the 180 training digits themselves (what reproducing them exactly would score),
beside DiffAugment's anchor (StyleGAN2 on 10% of CIFAR-10: FID 36.0 -> 14.5, i.e. augmentation divides it by 2.5).
Target: augmentation at least halves FD.

    OMP_NUM_THREADS=1 python benchmarks/small_data.py                      # the modern recipe, 3 seeds
    OMP_NUM_THREADS=1 python benchmarks/small_data.py --recipe digits-conditional --seeds 1
    OMP_NUM_THREADS=1 python benchmarks/small_data.py --steps 20000 --every 4000 --fd-n 5000 \
        --augment none diffaug:policy=translation ada:adapt=false,p=0.3 > small_data.log   # the README's table
    # interrupted? the same command with --reuse small_data.log trains only the runs it had not finished
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import train_judge
from digits import _mean_se, frechet, judge_features, real_floor, recipe_curve

RESULTS = Path(__file__).parent / "results"
AUGMENTATIONS = ("none", "diffaug", "ada")
ANCHOR = {"source": "DiffAugment (Zhao et al. 2020), StyleGAN2 on 10% of CIFAR-10", "fid_without": 36.0,
          "fid_with": 14.5}


def finished_runs(log: Path) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The points an earlier invocation printed (one JSON object per line, among its other lines), by recipe and
    seed."""
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            point = json.loads(line)
            runs.setdefault((point["recipe"], point["seed"]), []).append(point)
    return runs


def print_by_step(curves: list[dict[str, Any]], augments: list[str], key: str, seeds: int) -> None:
    """The judged checkpoints: each augmentation's FD (`key`) per step, the mean over seeds, and its ratio to none's."""
    steps = sorted({c["step"] for c in curves})
    mean = {(a, s): _mean_se([c[key] for c in curves if c["augment"] == a and c["step"] == s])[0]
            for a in augments for s in steps}
    print(f"\n{key} by step, mean over {seeds} seeds (/ none: the ratio to no augmentation at the same step)\n")
    print("| augmentation | " + " | ".join(f"{s:,}" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for a in augments:
        print(f"| {a} | " + " | ".join(f"{mean[a, s]:.3f}" for s in steps) + " |")
        if a != "none" and "none" in augments:
            print(f"| {a} / none | " + " | ".join(f"{mean[a, s] / mean['none', s]:.2f}" for s in steps) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="digits-modern", help="the preset trained on the small data")
    parser.add_argument("--per-class", type=int, default=18, help="digits per class (18: 10%% of the digits)")
    parser.add_argument("--subset-seed", type=int, default=0,
                        help="draw the per-class digits at random with this seed (default 0); -1: the first ones")
    parser.add_argument("--augment", nargs="+", default=list(AUGMENTATIONS),
                        help="augmentations compared, each as --augment takes it (e.g. diffaug:policy=translation)")
    parser.add_argument("--steps", type=int, help="training steps (default: the recipe's)")
    parser.add_argument("--every", type=int, help="judge a checkpoint every N steps too (default: the final only)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="train seeds first-seed, first-seed + 1, ...")
    parser.add_argument("--n", type=int, default=1000, help="samples judged per run")
    parser.add_argument("--fd-n", type=int, help="also the FD of this many samples (e.g. 5000: less small-sample "
                                                 "bias, which pulls every FD towards the same value)")
    parser.add_argument("--out", type=Path, default=RESULTS / "small_data.json")
    parser.add_argument("--reuse", type=Path, help="the printed output of an earlier, interrupted invocation with "
                                                   "the same settings: runs it finished are read, not trained again")
    args = parser.parse_args()

    from sklearn.datasets import load_digits

    from gantoolkit.builtin.configs import PRESETS
    from gantoolkit.builtin.datasets.digits import RECOMMENDED_SIZE, resize_digits
    from gantoolkit.options import inline_options, parse_assignments

    judge = train_judge(RECOMMENDED_SIZE)
    floor = real_floor(judge, RECOMMENDED_SIZE)
    real = judge_features(judge, resize_digits(torch.from_numpy(load_digits().images).float().div(16).unsqueeze(1),
                                               RECOMMENDED_SIZE))
    from gantoolkit.builtin.datasets.digits import Digits
    from gantoolkit.data import DataRequest

    subset_seed = None if args.subset_seed < 0 else args.subset_seed
    data = {"name": "digits", "per_class": args.per_class,
            **({"subset_seed": subset_seed} if subset_seed is not None else {})}
    training = Digits(args.per_class, subset_seed).load(DataRequest(image_size=RECOMMENDED_SIZE)).data
    memorised = frechet(judge_features(judge, training), real)  # a generator that only reproduces its training set
    base = PRESETS[args.recipe][1]
    records: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    done = finished_runs(args.reuse) if args.reuse else {}
    for augment in args.augment:
        name, options = inline_options(augment, "--augment")
        layer = {**base, "data": data,
                 "augment": {"name": name, **parse_assignments(options, "--augment")}}
        if args.steps:
            layer["steps"] = args.steps
        steps = int(layer.get("steps", 1000))
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            recipe = f"{args.recipe}, augment {augment}"
            points = done.get((recipe, seed), [])
            if not points or points[-1]["step"] != steps or (args.fd_n and f"fd_{args.fd_n}" not in points[-1]):
                points = recipe_curve(recipe, layer, seed, args.every or steps, args.n, judge, real,
                                      (args.fd_n,) if args.fd_n else ())
            else:
                print(f"{recipe}, seed {seed}: read from {args.reuse}", flush=True)
            curves += [{**point, "augment": augment} for point in points]
            records.append(curves[-1])
    chosen = "the first ones" if subset_seed is None else f"drawn at random, seed {subset_seed}"
    print(f"\n{args.recipe} on {10 * args.per_class} digits ({args.per_class} per class, {chosen}); FD to all "
          f"1,797 real digits in the judge's features; mean ± standard error over {args.seeds} seeds (from seed "
          f"{args.first_seed}), {args.n} samples each\n")
    counts = {"fd": args.n, **({f"fd_{args.fd_n}": args.fd_n} if args.fd_n else {})}  # key: samples judged
    fds = list(counts)
    heads = " | ".join(f"FD ({n} samples) | / without" for n in counts.values())
    print(f"| augmentation | cond-acc | worst class | {heads} | CPU s |")
    print("|---|---|---|" + "---|---|" * len(fds) + "---|")
    none = [r for r in records if r["augment"] == "none"]
    without = {k: _mean_se([r[k] for r in none])[0] if none else float("nan") for k in fds}
    summary = {}
    for augment in args.augment:
        mine = [r for r in records if r["augment"] == augment]
        row = {k: _mean_se([r[k] for r in mine]) for k in ("cond_acc", "worst_class", *fds, "cpu_s")}
        summary[augment] = row
        cells = " | ".join(f"{row[k][0]:.3f} ± {row[k][1]:.3f} | {row[k][0] / without[k]:.2f}" for k in fds)
        print(f"| {augment} | {100 * row['cond_acc'][0]:.1f} ± {100 * row['cond_acc'][1]:.1f}% | "
              f"{100 * row['worst_class'][0]:.0f}% | {cells} | {row['cpu_s'][0]:.0f} |")
    blank = " | " * (2 * len(fds) - 1)
    print(f"| real (floor: two halves of the 1,797) | | | {floor:.3f}{blank}| |")
    print(f"| the {10 * args.per_class} training digits themselves | | | {memorised:.3f} | "
          f"{memorised / without['fd']:.2f}{' | ' * (2 * len(fds) - 2)} | |")
    anchor_ratio = ANCHOR["fid_with"] / ANCHOR["fid_without"]
    print(f"| anchor: {ANCHOR['source']} | | | FID {ANCHOR['fid_without']} -> {ANCHOR['fid_with']} | "
          f"{anchor_ratio:.2f}{' | ' * (2 * len(fds) - 2)} | |")
    augmented = [a for a in summary if a != "none"]
    for k in fds if augmented and none else ():
        best = min(augmented, key=lambda a: summary[a][k][0])
        ratio = summary[best][k][0] / without[k]
        print(f"target (augmentation at least halves FD), {k}: {'met' if ratio <= 0.5 else 'NOT met'} "
              f"(best: {best}, FD x {ratio:.2f})")
    for k in fds if args.every else ():
        print_by_step(curves, args.augment, k, args.seeds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"protocol": "issue 16: small data", "recipe": args.recipe,
                                    "per_class": args.per_class, "subset_seed": subset_seed, "steps": args.steps,
                                    "n": args.n, "fd_n": args.fd_n,
                                    "fd_floor": floor, "fd_training_subset": memorised,
                                    "anchor": ANCHOR,
                                    "summary": summary, "runs": records,
                                    "curves": curves}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
