"""What reading a large folder costs (issue 19): images/s delivered to the training step, and peak resident memory.

The script writes a folder of `--images` generated 128×128 JPEGs (smooth random colour fields with noise, quality 90)
and measures, each in a fresh process so that its peak resident memory is its own:

- first run: `folder:` with `stream=true` on an empty image cache: decode + resize to `--size` + write the cache,
  then one epoch of batches through the DataLoader workers; images/s over both;
- cached run: the same with the cache made (its file evicted from the page cache first with posix_fadvise, so it is
  read from disk): scan + key check, then one epoch of batches through the workers;
- in memory: `stream=false`: the cache read into memory, then one epoch of DeviceBatches;
- the cached run again on a folder of a quarter of the images (links to the first ones), to see whether resident
  memory depends on the dataset's size;
- the training step: DCGAN at `--size` (64: pytorch/examples' model), BCE, batch 64, fed by the cached streaming path,
  timing `--steps` steps after two of warm-up and the time spent waiting for batches inside them.

Peak resident memory is the process's ru_maxrss (file pages it mapped included) and, for the workers, the largest
worker's VmHWM, read while they run (0 where there are none). The target: the cached streaming path keeps the
DCGAN-64 step fed (data time < 5% of step time) with resident memory independent of the dataset's size.

    python benchmarks/data.py                  # 20,000 images, as the issue asks
    python benchmarks/data.py --images 4000    # a quicker run

Prints a table and writes benchmarks/results/data.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "data.json"
SOURCE_SIDE = 128


def make_folder(folder: Path, n: int) -> float:
    """n JPEGs of 128×128 (a 4×4 random colour field upsampled, with noise); returns the seconds it took."""
    from PIL import Image

    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        field = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize(
            (SOURCE_SIDE, SOURCE_SIDE), Image.Resampling.BILINEAR)
        noisy = np.asarray(field, dtype=np.int16) + rng.integers(-12, 13, (SOURCE_SIDE, SOURCE_SIDE, 3))
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=90)
    return time.perf_counter() - started


def evict(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache, so the next read comes from the disk."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def worker_peak_mib() -> float:
    """The largest peak resident memory (VmHWM) of this process's live children, the DataLoader workers, in MiB
    (RUSAGE_CHILDREN cannot tell them apart: importing torch already ran a child of some 430 MiB)."""
    pids = [pid for children in Path("/proc/self/task").glob("*/children") for pid in children.read_text().split()]
    peak = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        peak = max([peak, *(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))])
    return peak / 1024


def peak_mib() -> float:
    """Peak resident memory of this process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the measurements, each run in its own process (--child MODE) ------------------------------------------------


def load(folder: Path, size: int, stream: bool):
    from gantoolkit.builtin.datasets.folder import ImageFolder
    from gantoolkit.data import DataRequest

    return ImageFolder(stream=stream).load(DataRequest(argument=str(folder), image_size=size, image_shape=(size, size)))


def deliver(folder: Path, size: int, batch: int, workers: int, stream: bool, evict_cache: bool) -> dict:
    """Load the folder and draw one epoch of batches; seconds of each part."""
    import torch

    from gantoolkit.data import batches_for, cache

    if evict_cache:
        evict([e.images_path for e in cache.entries()])
    started = time.perf_counter()
    dataset = load(folder, size, stream)
    loaded = time.perf_counter()
    batches = batches_for(dataset, batch, torch.device("cpu"), 0, workers=workers)
    n = batches.batches_per_epoch
    for _ in range(n):
        batches.next()
    done = time.perf_counter()
    workers_mib = worker_peak_mib()
    batches.close()
    del batches
    images = n * batch
    return {"images": images, "load_s": loaded - started, "epoch_s": done - loaded,
            "images_per_s": images / (done - started), "epoch_images_per_s": images / (done - loaded),
            "decoded_mib": dataset.data.numel() / 2**20, "streamed": dataset.stream is not None,
            "peak_worker_rss_mib": workers_mib}


def training_step(folder: Path, size: int, batch: int, workers: int, steps: int) -> dict:
    """DCGAN at `size` fed by the cached streaming path: seconds per step and the share spent waiting for data."""
    import torch

    from gantoolkit.config import RunConfig, apply_layer
    from gantoolkit.data.loading import load_dataset
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry
    from gantoolkit.training.trainer import Trainer

    flags = {"arch": "dcgan", "loss": "bce", "cond": "none", "image_size": size, "batch_size": batch,
             "data": {"name": f"folder:{folder}", "stream": True}, "workers": workers, "device": "cpu"}
    config = apply_layer(RunConfig(), flags, "command line").validate()
    torch.manual_seed(0)
    dataset = load_dataset(config, get_registry())
    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(build_models(config, dataset.info, get_registry()), dataset, Path(run), torch.device("cpu"))
        waited = [0.0]
        draw = trainer.batches.next

        def timed():
            t = time.perf_counter()
            out = draw()
            waited[0] += time.perf_counter() - t
            return out

        trainer.batches.next = timed  # type: ignore[method-assign]
        for _ in range(2):  # warm-up: the workers start, the allocator settles
            trainer.train_step()
        waited[0] = 0.0
        started = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        seconds = time.perf_counter() - started
        workers_mib = worker_peak_mib()
        trainer.batches.close()
    return {"steps": steps, "step_s": seconds / steps, "step_images_per_s": steps * batch / seconds,
            "data_s_per_step": waited[0] / steps, "data_share": waited[0] / seconds,
            "threads": torch.get_num_threads(), "peak_worker_rss_mib": workers_mib}


def child(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    if args.child == "baseline":
        import torch  # noqa: F401

        import gantoolkit.data.streaming  # noqa: F401
        out: dict = {"peak_worker_rss_mib": 0.0}
    elif args.child == "first":
        out = deliver(folder, args.size, args.batch_size, args.workers, stream=True, evict_cache=False)
    elif args.child == "cached":
        out = deliver(folder, args.size, args.batch_size, args.workers, stream=True, evict_cache=True)
    elif args.child == "memory":
        out = deliver(folder, args.size, args.batch_size, args.workers, stream=False, evict_cache=True)
    else:
        out = training_step(folder, args.size, args.batch_size, args.workers, args.steps)
    print(json.dumps({**out, "peak_rss_mib": peak_mib()}))


def run_child(mode: str, folder: Path, args: argparse.Namespace, env: dict[str, str]) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--folder", str(folder), "--size", str(args.size),
               "--batch-size", str(args.batch_size), "--workers", str(args.workers), "--steps", str(args.steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="JPEGs in the generated folder (default 20,000)")
    parser.add_argument("--size", type=int, default=64, help="the model's image size (default 64: DCGAN-64)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: gantool's)")
    parser.add_argument("--steps", type=int, default=8, help="training steps timed after two of warm-up")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.workers is None:
        from gantoolkit.data.streaming import default_workers

        args.workers = default_workers()

    with tempfile.TemporaryDirectory(prefix="gantool-data-bench-") as tmp:
        root = Path(tmp)
        big, small = root / "images", root / "quarter"
        made_s = make_folder(big, args.images)
        small.mkdir()
        for path in sorted(big.iterdir())[: args.images // 4]:
            (small / path.name).symlink_to(path)
        env = {**os.environ, "GANTOOL_DATA_CACHE": str(root / "cache"), "GANTOOL_DISABLE_PLUGIN_AUTOLOAD": "1"}
        env.pop("GANTOOL_DATA_MEMORY", None)
        evict(sorted(big.iterdir()))
        rows = {"baseline": run_child("baseline", big, args, env),
                "first": run_child("first", big, args, env),
                "cached": run_child("cached", big, args, env),
                "memory": run_child("memory", big, args, env)}
        run_child("first", small, args, env)  # makes the quarter's entry (not reported)
        rows["cached_quarter"] = run_child("cached", small, args, env)
        rows["step"] = run_child("step", big, args, env)

    step = rows["step"]
    print(f"folder: {args.images:,} generated {SOURCE_SIDE}x{SOURCE_SIDE} JPEGs (written in {made_s:.0f} s), "
          f"decoded to "
          f"{args.size}x{args.size} RGB = {rows['memory']['decoded_mib']:.0f} MiB; batch {args.batch_size}, "
          f"{args.workers} workers; process baseline {rows['baseline']['peak_rss_mib']:.0f} MiB")
    print(f"{'path':<40} {'images/s':>10} {'epoch only':>11} {'load s':>8} {'peak RSS MiB':>13} {'worker MiB':>11}")
    names = {"first": "first run (decode + cache, then stream)", "cached": "cached run (stream from the cache)",
             "memory": "in memory (cache read into memory)",
             "cached_quarter": f"cached run, {args.images // 4:,} images"}
    for key, name in names.items():
        r = rows[key]
        print(f"{name:<40} {r['images_per_s']:>10,.0f} {r['epoch_images_per_s']:>11,.0f} {r['load_s']:>8.1f} "
              f"{r['peak_rss_mib']:>13.0f} {r['peak_worker_rss_mib']:>11.0f}")
    print(f"{'training step (DCGAN-64, bce, cached)':<40} {step['step_images_per_s']:>10,.1f} "
          f"{'':>11} {'':>8} {step['peak_rss_mib']:>13.0f} {step['peak_worker_rss_mib']:>11.0f}")
    fed = step["data_share"] < 0.05
    flat = rows["cached"]["peak_rss_mib"] - rows["cached_quarter"]["peak_rss_mib"]
    print(f"data time in the step: {step['data_s_per_step'] * 1000:.1f} ms of {step['step_s'] * 1000:.0f} ms "
          f"({step['data_share']:.2%}): target < 5 % {'met' if fed else 'NOT met'}")
    print(f"cached streaming peak RSS, {args.images:,} vs {args.images // 4:,} images: "
          f"{rows['cached']['peak_rss_mib']:.0f} vs {rows['cached_quarter']['peak_rss_mib']:.0f} MiB "
          f"(difference {flat:+.0f} MiB; the decoded data is {rows['memory']['decoded_mib']:.0f} MiB, the in-memory "
          f"path peaks at {rows['memory']['peak_rss_mib']:.0f} MiB)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "images": args.images, "source_side": SOURCE_SIDE, "size": args.size, "batch_size": args.batch_size,
        "workers": args.workers, "steps": args.steps, "cpus": os.cpu_count(), "folder_written_s": made_s,
        "rows": rows, "data_share_target_met": fed, "cached_rss_difference_mib": flat,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
