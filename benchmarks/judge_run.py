"""Where a conditional digits run goes wrong: the SVC judge (benchmarks/digit_judge.py) on N samples of a run.

Prints the share read as the class asked for, each class's share with what its misses were read as, and the
Fréchet distance to all 1,797 real digits in the judge's features (the same measure as benchmarks/digits.py; with
N samples against 1,797 real ones it sits below that file's floor of two real halves, so compare runs at one N).
More samples than --first-run's 1,000 make the per-class figures steadier (±2 points at 100 per class).

    python benchmarks/judge_run.py runs/NAME --n 5000 [--out results/NAME.json]
    python benchmarks/judge_run.py --neighbours     # which real digits sit next to which (5 nearest, in pixels)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import train_judge
from digits import frechet, judge_features


def real_digits(size: int) -> tuple[torch.Tensor, np.ndarray]:
    """All 1,797 real digits at `size` (uint8, the model-size round trip) and their labels."""
    from sklearn.datasets import load_digits

    from gantoolkit.builtin.datasets.digits import resize_digits

    digits = load_digits()
    return resize_digits(torch.from_numpy(digits.images).float().div(16).unsqueeze(1), size), digits.target


def judge_run(run: Path, n: int, seed: int) -> dict:
    """The judged figures of `run`'s EMA generator on `n` samples (n/10 per class) drawn with `seed`."""
    from gantoolkit.data import to_uint8
    from gantoolkit.sampling.generator import load_generator

    model = load_generator(run)
    size = int(model.data.shape[-1])
    judge = train_judge(size)
    samples, labels = model.sample(n, seed=seed)
    assert labels is not None, "the run must be conditional (--cond onehot or another labelled conditioning)"
    images, asked = to_uint8(samples), labels.numpy()
    predicted = judge.predict(images)
    real, _ = real_digits(size)
    per_class = [float((predicted[asked == c] == c).mean()) for c in range(10)]
    misread = [np.bincount(predicted[(asked == c) & (predicted != c)], minlength=10).tolist() for c in range(10)]
    return {"run": str(run), "step": model.checkpoint.step, "n": n, "seed": seed, "image_size": size,
            "cond_acc": float((predicted == asked).mean()), "per_class": per_class, "worst_class": min(per_class),
            "misread_as": misread, "fd": frechet(judge_features(judge, images), judge_features(judge, real))}


def real_per_class(size: int) -> list[float]:
    """The judge's per-class accuracy on the real digits (all 1,797, its own training part included) at `size`."""
    images, labels = real_digits(size)
    predicted = train_judge(size).predict(images)
    return [float((predicted[labels == c] == c).mean()) for c in range(10)]


def neighbour_pairs(k: int = 5) -> dict[tuple[int, int], int]:
    """How often a real digit of one class has one of the other among its `k` nearest neighbours (pixel space,
    either way round), for each pair of classes that meet at all, most first."""
    from sklearn.datasets import load_digits
    from sklearn.neighbors import NearestNeighbors

    digits = load_digits()
    _, index = NearestNeighbors(n_neighbors=k + 1).fit(digits.data).kneighbors(digits.data)
    counts: dict[tuple[int, int], int] = {}
    for label, neighbours in zip(digits.target, digits.target[index[:, 1:]], strict=True):
        for other in neighbours[neighbours != label]:
            pair = (int(min(label, other)), int(max(label, other)))
            counts[pair] = counts.get(pair, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?")
    parser.add_argument("--neighbours", action="store_true", help="print which real digits neighbour which")
    parser.add_argument("--n", type=int, default=5000, help="samples judged (n/10 per class; default 5,000)")
    parser.add_argument("--seed", type=int, default=10_001)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    if args.neighbours:
        pairs = neighbour_pairs()
        print("real digits beside another class among their 5 nearest neighbours (pixels), by pair of classes:")
        print("  " + ", ".join(f"{a}/{b} {n}" for (a, b), n in list(pairs.items())[:8]))
        print("the judge on all 1,797 real digits at 16x16, per class: " +
              " ".join(f"{100 * share:.1f}" for share in real_per_class(16)))
        return
    if args.run is None:
        parser.error("give a run directory, or --neighbours")
    result = judge_run(args.run, args.n, args.seed)
    print(f"{args.run} (step {result['step']:,}, {result['image_size']}x{result['image_size']}): "
          f"{100 * result['cond_acc']:.2f}% read as the class asked for, {args.n // 10} samples per class; "
          f"FD {result['fd']:.3f}")
    for c, (share, misses) in enumerate(zip(result["per_class"], result["misread_as"], strict=True)):
        wrong = ", ".join(f"{k} x{v}" for k, v in enumerate(misses) if v)
        print(f"  {c}: {100 * share:5.1f}%" + (f"   misread as {wrong}" if wrong else ""))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
