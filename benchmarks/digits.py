"""BENCHMARKS.md §4: conditional digits, "you get what you ask for".

For bce, wgan and wgan-gp with one-hot conditioning (DCGAN on scikit-learn's digits at --image-size): train, then
generate N images per class and judge them with an SVC the generator never saw (benchmarks/digit_judge.py, trained on
real digits; its held-out accuracy is printed beside). Reports the share classified as the class asked for, classes
covered, the Fréchet distance in the judge's feature space (its 10 one-vs-rest decision values) with the
real-vs-real split as the floor, and the CPU seconds of training. Writes results/digits.json.

    OMP_NUM_THREADS=1 python benchmarks/digits.py --image-size 16 --steps 1000
    OMP_NUM_THREADS=1 python benchmarks/digits.py --losses bce --steps 1500 --image-size 32 --width 64 \
        --per-class 100 --seeds 3 --out benchmarks/results/digits_spine.json     # the spine's check: gantool's defaults
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import DigitJudge, train_judge

RESULTS = Path(__file__).parent / "results"


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """‖μa − μb‖² + Tr(Ca + Cb − 2(Ca Cb)^½), through the same torchmetrics routine `gantool evaluate` uses."""
    from torchmetrics.image.fid import _compute_fid

    ta, tb = torch.from_numpy(a).double(), torch.from_numpy(b).double()
    return float(_compute_fid(ta.mean(0), torch.cov(ta.T), tb.mean(0), torch.cov(tb.T)))


def judge_features(judge: DigitJudge, images: torch.Tensor) -> np.ndarray:
    """The judge's representation of images: its one-vs-rest decision values (N×10)."""
    model = judge.model
    previous = model.decision_function_shape
    model.decision_function_shape = "ovr"
    try:
        return model.decision_function(judge.features(images))
    finally:
        model.decision_function_shape = previous


def real_floor(judge: DigitJudge, image_size: int) -> float:
    """Fréchet distance between two random halves of the real digits (after the same resize round trip)."""
    from sklearn.datasets import load_digits

    from gantoolkit.builtin.datasets.digits import resize_digits

    images = resize_digits(torch.from_numpy(load_digits().images).float().div(16).unsqueeze(1), image_size)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    half = len(images) // 2
    return frechet(judge_features(judge, images[order[:half]]), judge_features(judge, images[order[half:]]))


def run_one(loss: str, seed: int, args: argparse.Namespace, judge: DigitJudge) -> dict[str, Any]:
    from rich.console import Console

    from gantoolkit.config import RunConfig, apply_layer
    from gantoolkit.data import to_uint8
    from gantoolkit.sampling import load_generator
    from gantoolkit.training import train

    layer = {"data": "digits", "image_size": args.image_size, "arch": {"name": "dcgan", "ngf": args.width,
             "ndf": args.width}, "loss": loss, "cond": "onehot", "steps": args.steps, "seed": seed,
             "device": "cpu", "sample_every": 10**9, "checkpoint_every": 10**9, "log_every": 10**9}
    config = apply_layer(RunConfig(), layer, f"digits {loss}")
    root = Path(tempfile.mkdtemp(prefix=f"digits-{loss}-{seed}-"))
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    with open(root / "train.log", "w") as log:
        run = train(config, root / "run", Console(file=log))
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    model = load_generator(run)
    samples, labels = model.sample(args.per_class * 10, seed=10_000 + seed)
    assert labels is not None
    images = to_uint8(samples)
    predicted = judge.predict(images)
    asked = labels.numpy()
    from sklearn.datasets import load_digits

    from gantoolkit.builtin.datasets.digits import resize_digits

    real = resize_digits(torch.from_numpy(load_digits().images).float().div(16).unsqueeze(1), args.image_size)
    return {
        "loss": loss, "seed": seed, "steps": args.steps,
        "cond_acc": float((predicted == asked).mean()),
        "classes": len(set(predicted.tolist())),
        "fd": frechet(judge_features(judge, real), judge_features(judge, images)),
        "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "run": str(run),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", default="bce,wgan,wgan-gp")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--width", type=int, default=32, help="DCGAN ngf = ndf")
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS / "digits.json")
    args = parser.parse_args()

    judge = train_judge(args.image_size)
    floor = real_floor(judge, args.image_size)
    records = []
    for loss in args.losses.split(","):
        for seed in range(args.seeds):
            record = run_one(loss, seed, args, judge)
            print(json.dumps(record), flush=True)
            records.append(record)
    print(f"\njudge: SVC on real 8x8 digits, held-out accuracy {judge.held_out_accuracy:.3f}; after the "
          f"{args.image_size}px round trip {judge.round_trip_accuracy:.3f} (the ceiling; published plain SVC ≈ 0.997)")
    print(f"Fréchet distance floor (real vs real halves, judge features): {floor:.3f}\n")
    print(f"| {'loss':<8} | {'cond. accuracy':>14} | {'classes':>7} | {'Fréchet distance':>16} | {'CPU s':>7} |")
    print("|----------|----------------|---------|------------------|---------|")
    for r in records:
        print(f"| {r['loss']:<8} | {100 * r['cond_acc']:13.1f}% | {r['classes']:>4}/10 | {r['fd']:16.3f} | "
              f"{r['cpu_s']:7.0f} |")
    print(f"| {'real':<8} | {100 * judge.round_trip_accuracy:13.1f}% | {'10/10':>7} | {floor:16.3f} | {'':>7} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {"protocol": "BENCHMARKS.md §4", "image_size": args.image_size, "steps": args.steps, "width": args.width,
           "per_class": args.per_class, "judge_held_out": judge.held_out_accuracy,
           "judge_round_trip": judge.round_trip_accuracy, "fd_floor": floor, "runs": records}
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
