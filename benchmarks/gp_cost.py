"""What the gradient penalty costs (BENCHMARKS.md §3), and what the lazy penalty saves and changes.

Speed: seconds per critic step (`Trainer.critic_step`, exactly what `gantool train` runs n_critic times per step:
a fake batch, the critic on real and fake, the penalty, the update) of
  wgan            W-loss with weight clipping
  wgan-gp         W-loss with the gradient penalty on every critic step
  wgan-gp lazy N  the penalty every N critic steps, its weight times N (as StyleGAN2 does for R1)
on the same critic (dcgan with LayerNorm, which the penalty needs, for all three), the README's recipe by default
(digits at 32x32, one-hot conditioning, batch 64). The three alternate in blocks of critic steps (a multiple of N,
rotating order); medians of per-block wall-clock and CPU seconds, and their ratios over wgan, are reported.
Published GPU figures from old PyTorch are 5x to 25x (pytorch/pytorch#7714, #3076); there is no CPU figure.

Quality (--quality): BENCHMARKS.md §4's conditional-digits protocol, run by benchmarks/digits.py (its recipe: DCGAN
width 32 at 16px, 800 steps; its independent SVC judge: conditional accuracy, classes covered, Fréchet distance in
the judge's features beside the real-vs-real floor), for wgan-gp with the penalty on every critic step and on every
N-th, same seeds; the CPU seconds of each training run are reported beside.

Writes benchmarks/results/gp_cost.json (and gp_cost_quality.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
PUBLISHED = "5x to 25x on GPUs with old PyTorch (pytorch/pytorch#7714, #3076)"


def trainer_for(loss: dict, data: str, image_size: int, batch_size: int, run_dir: Path):
    """The Trainer `gantool train --arch dcgan --arch-opt critic_norm=layer --cond onehot ...` builds."""
    from gantoolkit.config import RunConfig, apply_layer
    from gantoolkit.data.loading import load_dataset
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry
    from gantoolkit.training.trainer import Trainer

    flags = {"arch": {"name": "dcgan", "critic_norm": "layer"}, "loss": loss, "cond": "onehot", "data": data,
             "image_size": image_size, "batch_size": batch_size, "device": "cpu"}
    config = apply_layer(RunConfig(), flags, "command line").validate()
    registry = get_registry()
    torch.manual_seed(config.seed)
    dataset = load_dataset(config, registry)
    trainer = Trainer(build_models(config, dataset.info, registry), dataset, run_dir, torch.device("cpu"))
    trainer.D.requires_grad_(True)
    return trainer


def speed(args: argparse.Namespace) -> dict:
    variants = {"wgan": {"name": "wgan"}, "wgan-gp": {"name": "wgan-gp"},
                f"wgan-gp lazy {args.lazy}": {"name": "wgan-gp", "lazy_every": args.lazy}}
    block = args.lazy * max(1, args.block // args.lazy)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {name: trainer_for(loss, args.data, args.image_size, args.batch_size, Path(tmp) / str(i))
                    for i, (name, loss) in enumerate(variants.items())}
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in trainers}

        def run(name: str, n: int) -> tuple[float, float]:
            trainer = trainers[name]
            wall, cpu = time.perf_counter(), time.process_time()
            for k in range(n):  # critic step index k: the lazy penalty falls on k = 0, N, 2N, ...
                trainer.critic_step(k)
            return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n

        for name in trainers:
            run(name, args.lazy)  # warm-up
        names = list(trainers)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                times[name].append(run(name, block))
            print(f"round {r + 1:3d}/{args.rounds}: " + "  ".join(
                f"{n} {times[n][-1][0]:.4f}s" for n in names), flush=True)
    base = "wgan"
    rows = {}
    for name in names:
        wall = [t[0] for t in times[name]]
        cpu = [t[1] for t in times[name]]
        rows[name] = {
            "wall_s_per_critic_step": statistics.median(wall), "cpu_s_per_critic_step": statistics.median(cpu),
            "wall_ratio_over_wgan": statistics.median(w / b[0] for w, b in zip(wall, times[base], strict=True)),
            "cpu_ratio_over_wgan": statistics.median(c / b[1] for c, b in zip(cpu, times[base], strict=True)),
        }
    lazy = names[2]
    lazy_speedup = {
        "wall": statistics.median(a[0] / b[0] for a, b in zip(times["wgan-gp"], times[lazy], strict=True)),
        "cpu": statistics.median(a[1] / b[1] for a, b in zip(times["wgan-gp"], times[lazy], strict=True)),
    }
    print()
    print(f"critic step, dcgan (LayerNorm critic), {args.data} at {args.image_size}px, batch {args.batch_size}, "
          f"CPU ({torch.get_num_threads()} threads), {args.rounds} rounds of {block} critic steps")
    print(f"{'':18} {'wall s':>9} {'cpu s':>9} {'wall x wgan':>12} {'cpu x wgan':>11}")
    for name, row in rows.items():
        print(f"{name:18} {row['wall_s_per_critic_step']:9.4f} {row['cpu_s_per_critic_step']:9.4f} "
              f"{row['wall_ratio_over_wgan']:12.3f} {row['cpu_ratio_over_wgan']:11.3f}")
    print(f"lazy {args.lazy} speed-up over wgan-gp: {lazy_speedup['wall']:.3f}x wall, {lazy_speedup['cpu']:.3f}x cpu")
    print(f"anchor: {PUBLISHED}; no published CPU figure")
    return {"benchmark": "gp_cost", "data": args.data, "image_size": args.image_size, "batch_size": args.batch_size,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "rounds": args.rounds,
            "block_critic_steps": block, "lazy_every": args.lazy, "variants": rows,
            "lazy_speedup_over_wgan_gp": lazy_speedup, "published": PUBLISHED,
            "load_average": os.getloadavg(), "cpus": os.cpu_count(),
            "raw": {n: times[n] for n in names}}


def quality(args: argparse.Namespace) -> dict:
    """BENCHMARKS.md §4's protocol (benchmarks/digits.py: its training recipe and its independent judge) for wgan-gp
    with the penalty on every critic step and every N-th, same seeds and steps."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from digits import real_floor, run_one, train_judge

    judge = train_judge(args.image_size)
    floor = real_floor(judge, args.image_size)
    out: dict = {"benchmark": "gp_cost_quality", "protocol": "BENCHMARKS.md §4 via benchmarks/digits.py",
                 "image_size": args.image_size, "width": args.width, "steps": args.steps, "per_class": args.per_class,
                 "judge_round_trip": judge.round_trip_accuracy, "fd_floor": floor, "runs": []}
    for seed in args.seeds:
        for lazy in (1, args.lazy):
            record = run_one({"name": "wgan-gp", "lazy_every": lazy}, seed, args, judge)
            record["lazy_every"] = lazy
            out["runs"].append(record)
            print(f"lazy {lazy:2d} seed {seed}: cond_acc {record['cond_acc']:.4f}  classes {record['classes']}  "
                  f"fd {record['fd']:.4f}  train cpu {record['cpu_s']:.0f}s", flush=True)
    print(f"\n{args.steps} steps at {args.image_size}px, width {args.width}; judge round trip "
          f"{judge.round_trip_accuracy:.3f}, Fréchet floor (real vs real) {floor:.3f}")
    print(f"{'penalty':14} {'cond. accuracy':>15} {'Fréchet distance':>17} {'train CPU s':>12}")
    for lazy in (1, args.lazy):
        rows = [r for r in out["runs"] if r["lazy_every"] == lazy]
        mean = {k: statistics.mean(float(r[k]) for r in rows) for k in ("cond_acc", "fd", "cpu_s")}
        out[f"lazy{lazy}_mean"] = mean
        label = "every step" if lazy == 1 else f"every {lazy}th"
        print(f"{label:14} {100 * mean['cond_acc']:14.1f}% {mean['fd']:17.3f} {mean['cpu_s']:12.0f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lazy", type=int, default=4, help="lazy penalty: every N critic steps (default 4)")
    parser.add_argument("--rounds", type=int, default=12, help="rounds of the three variants (default 12)")
    parser.add_argument("--block", type=int, default=8, help="critic steps per block (default 8)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch's choice)")
    parser.add_argument("--quality", action="store_true", help="also train and judge the digits recipe (§4)")
    parser.add_argument("--steps", type=int, default=800, help="--quality: training steps (default 800, as §4's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="--quality: seeds (default 0)")
    parser.add_argument("--width", type=int, default=32, help="--quality: DCGAN ngf = ndf (default 32, as §4's)")
    parser.add_argument("--per-class", type=int, default=200, help="--quality: samples judged per class")
    parser.add_argument("--quality-image-size", type=int, default=16, help="--quality: image size (default 16)")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    if not args.skip_speed:
        (RESULTS / "gp_cost.json").write_text(json.dumps(speed(args), indent=2) + "\n")
        print(f"wrote {RESULTS / 'gp_cost.json'}")
    if args.quality:
        args.image_size = args.quality_image_size
        (RESULTS / "gp_cost_quality.json").write_text(json.dumps(quality(args), indent=2) + "\n")
        print(f"wrote {RESULTS / 'gp_cost_quality.json'}")


if __name__ == "__main__":
    main()
