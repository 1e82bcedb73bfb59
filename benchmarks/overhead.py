"""What the toolkit costs over a hand-written loop (BENCHMARKS.md §2).

gantoolkit side: exactly what `gantool train --arch dcgan --loss bce --cond none --data fake:3x64x64 --image-size 64
--batch-size 64 --g-batch reuse` runs, built the way `gantoolkit.training.run.train` builds it (RunConfig from those
flags, load_dataset, build_models, Trainer), timed through `Trainer.fit` itself (the training step plus all the per-
step work around it: data batches from the device, loss tracking, progress bar, metrics every --log-every steps).
Only the sample grids and checkpoints (every 500 steps by default) are left out of the timed blocks. `--g-batch
reuse` is the example's algorithm (the generator's update uses the fakes the critic just saw, so one generator pass
per step); the toolkit's default, `--g-batch fresh` (the course's algorithm: new noise for the generator's update),
does one more generator pass per step, which `--toolkit-g-batch fresh` measures beside.

Reference side: pytorch/examples `dcgan/main.py`'s training iteration verbatim (netD with its final Sigmoid and
nn.BCELoss, as the example has them; the `.item()` calls and the per-iteration print, sent to a null stream) with
the same modules, the same initial weights (copied from the toolkit's), Adam 2e-4 (0.5, 0.999). Its batches come
from a ready float tensor already in [-1, 1], so it pays nothing for data (the example's DataLoader would cost it
more): the comparison is conservative.

The two alternate in blocks of steps after a warm-up (ABBA order, so a drifting machine load cancels), and the
reported figure is the median over pairs of (toolkit seconds per step) / (reference seconds per step), in wall-clock
time (the protocol's figure) and in this process's CPU time (which other programs on a shared machine disturb far
less). One torch thread by default (--threads), the same for both sides.

On a GPU (BENCHMARKS.md §6: `--device cuda`, with `--amp` and `--compile` for the toolkit's bf16 autocast, channels_last
and torch.compile; the reference stays the example, fp32): images per second of both and their peak memory. Not run
on the machine this was written on (no GPU). `--arch r3gan` times the modern backbone the same way (`gantool train
--arch r3gan` with the flags above; the reference loop runs copies of its bare generator and critic):

    python benchmarks/overhead.py --device cuda --amp --compile --arch r3gan

`--logger tensorboard` (any registered logger names, comma-separated) gives the toolkit side the loggers `gantool
train --logger` would (they get every metrics.jsonl record, at --log-every); with `--against toolkit` the other side
is the same run without them (same seed, same weights), so the ratio is what the loggers cost, measured side by side:

    python benchmarks/overhead.py --logger tensorboard --against toolkit --log-every 4

Writes benchmarks/results/overhead.json (overhead_cuda.json on a GPU, overhead_r3gan.json with --arch r3gan,
overhead_LOGGER.json with --logger).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import torch
from torch import nn

GOAL, LIMIT = 1.03, 1.05
#: what loggers may cost (issue 17): within 2 % of the same run without them
LOGGER_LIMIT = 1.02
FLAGS = {"arch": "dcgan", "loss": "bce", "cond": "none", "data": "fake:3x64x64", "image_size": 64, "batch_size": 64}


def toolkit_trainer(run_dir: Path, seed: int, device: str = "cpu", extra: dict | None = None):
    """The Trainer `gantool train` builds for FLAGS (see gantoolkit.training.run.train)."""
    from rich.console import Console

    from gantoolkit.config import RunConfig, apply_layer
    from gantoolkit.data.loading import load_dataset
    from gantoolkit.device import resolve_device
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry
    from gantoolkit.training.progress import Monitor
    from gantoolkit.training.trainer import Trainer

    flags = {**FLAGS, "seed": seed, "device": device, **(extra or {})}
    config = apply_layer(RunConfig(), flags, "command line").validate()
    registry = get_registry()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    dataset = load_dataset(config, registry)
    models = build_models(config, dataset.info, registry)
    trainer = Trainer(models, dataset, run_dir, device)
    # samples and checkpoints are written every 500 steps, not every step: they are not what this measures
    trainer.save_samples = lambda: None  # type: ignore[method-assign]
    trainer.save_checkpoint = lambda: None  # type: ignore[method-assign]
    trainer.save_final_grid = lambda: None  # type: ignore[method-assign]  # (the end of each timed block)
    # a live progress bar, as on a terminal (the costlier display), rendered into memory
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    monitor = Monitor(run_dir / "metrics.jsonl", 10**9, 0, console)
    return trainer, monitor, dataset


def attach_loggers(trainer, monitor, run_dir: Path):
    """The run's --logger list started on its configuration and handed to the monitor, as gantool train does; kept
    open across the timed blocks (each `Trainer.fit` call would otherwise close them), closed by the caller."""
    from gantoolkit.loggers import Loggers

    loggers = Loggers.create(trainer.cfg.loggers)
    loggers.start(run_dir, {**trainer.cfg.to_json(), "components": trainer.models.provenance}, 0)
    close, loggers.close = loggers.close, lambda: None  # type: ignore[method-assign]
    monitor.loggers = loggers
    return types.SimpleNamespace(close=close)


class Reference:
    """pytorch/examples dcgan/main.py: netG, netD (with Sigmoid), BCELoss, Adam, one D and one G update.

    With `--arch dcgan` netG and netD are the example's own modules (weights copied from the toolkit's); with
    another architecture (`--arch r3gan`) they are copies of the toolkit's bare generator and critic bodies (no
    conditioning wrapper), run by the same loop."""

    def __init__(self, trainer, dataset, nz: int = 100) -> None:
        self.device = trainer.device
        if trainer.cfg.arch.name == "dcgan":
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.test_components import reference_dcgan

            netG, body_d = reference_dcgan(nz=nz)
            self.netG, self.netD = netG.to(self.device), nn.Sequential(*body_d, nn.Sigmoid()).to(self.device)
            g_params = list(trainer.G.parameters())
            d_params = list(trainer.D.parameters())
            for mine, theirs in ((g_params, self.netG.parameters()), (d_params, self.netD.parameters())):
                for p, q in zip(mine, theirs, strict=True):
                    q.data.copy_(p.data)
        else:
            self.netG = copy.deepcopy(trainer.G.body)
            self.netD = nn.Sequential(copy.deepcopy(trainer.D.body), nn.Sigmoid())
        self.criterion = nn.BCELoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.nz = nz
        images = dataset.data.to(self.device).float().div(127.5).sub(1.0)  # ready: the reference pays nothing
        self.batches = list(images.split(64))[: len(images) // 64]
        self.i = 0
        self.out = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the benchmark)

    def step(self) -> None:
        device, nz, real_label, fake_label = self.device, self.nz, 1.0, 0.0
        netD, netG, criterion = self.netD, self.netG, self.criterion
        data = (self.batches[self.i % len(self.batches)],)
        self.i += 1
        # ---- pytorch/examples dcgan/main.py, the body of `for i, data in enumerate(dataloader, 0):` ----
        netD.zero_grad()
        real_cpu = data[0].to(device)
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=device)
        output = netD(real_cpu).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(batch_size, nz, 1, 1, device=device)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optimizerG.step()
        print(f"[{self.i}] Loss_D: {errD.item():.4f} Loss_G: {errG.item():.4f} D(x): {D_x:.4f} "
              f"D(G(z)): {D_G_z1:.4f} / {D_G_z2:.4f}", file=self.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=12, help="A/B block pairs (default 12)")
    parser.add_argument("--block", type=int, default=4, help="training steps per block (default 4)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each side first (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda (BENCHMARKS.md §6)")
    parser.add_argument("--arch", default="dcgan", choices=["dcgan", "r3gan"],
                        help="both sides' model (default dcgan, pytorch/examples'; r3gan: the modern backbone)")
    parser.add_argument("--amp", action="store_true", help="toolkit side: --amp (bf16 autocast on CUDA)")
    parser.add_argument("--compile", action="store_true", help="toolkit side: --compile")
    parser.add_argument("--toolkit-g-batch", default="reuse", choices=["reuse", "fresh"],
                        help="toolkit side: --g-batch (default reuse, the example's algorithm)")
    parser.add_argument("--logger", default="", help="toolkit side: --logger NAME[,NAME] (e.g. tensorboard)")
    parser.add_argument("--against", choices=["example", "toolkit"], default="example",
                        help="the reference side: pytorch/examples' loop (default), or the same gantool train "
                             "without --logger (with --logger: what the loggers cost, side by side)")
    parser.add_argument("--log-every", type=int, default=None, help="toolkit side: --log-every (default the toolkit's)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default results/overhead[_cuda].json)")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    if args.out is None:
        suffix = ("_cuda" if cuda else "") + ("" if args.arch == "dcgan" else f"_{args.arch}") + \
            ("_fresh" if args.toolkit_g_batch == "fresh" else "") + \
            "".join(f"_{name}" for name in args.logger.split(",") if name) + \
            ("_vs_toolkit" if args.against == "toolkit" else "")
        args.out = Path(__file__).parent / "results" / f"overhead{suffix}.json"
    extra = {"arch": args.arch, **({"amp": True} if args.amp else {"amp": False}),
             **({"compile": True} if args.compile else {}),
             "g_batch": args.toolkit_g_batch, **({"loggers": args.logger} if args.logger else {}),
             **({"log_every": args.log_every} if args.log_every else {})}
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, monitor, dataset = toolkit_trainer(Path(tmp), args.seed, args.device, extra)
        loggers = attach_loggers(trainer, monitor, Path(tmp))
        if args.against == "toolkit":  # the same run (same seed, so the same weights) without the loggers
            (Path(tmp) / "plain").mkdir()
            plain_flags = {k: v for k, v in extra.items() if k != "loggers"}
            plain, plain_monitor, _ = toolkit_trainer(Path(tmp) / "plain", args.seed, args.device, plain_flags)
        else:
            ref = Reference(trainer, dataset)

        peaks: dict[str, list[int]] = {"toolkit": [], "reference": []}

        def timed(work, n: int) -> tuple[float, float]:
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            wall, cpu = time.perf_counter(), time.process_time()
            work(n)
            if cuda:
                torch.cuda.synchronize()
                peaks["toolkit" if work is run_toolkit else "reference"].append(torch.cuda.max_memory_allocated())
            return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n

        def run_toolkit(n: int) -> None:
            trainer.fit(trainer.step + n, monitor)

        def run_reference(n: int) -> None:
            if args.against == "toolkit":
                plain.fit(plain.step + n, plain_monitor)
                return
            for _ in range(n):
                ref.step()

        run_toolkit(args.warmup)
        run_reference(args.warmup)
        toolkit, reference = [], []  # (wall, cpu) seconds per step of each block
        for pair in range(args.pairs):
            if pair % 2 == 0:
                t, r = timed(run_toolkit, args.block), timed(run_reference, args.block)
            else:
                r, t = timed(run_reference, args.block), timed(run_toolkit, args.block)
            toolkit.append(t)
            reference.append(r)
            print(f"pair {pair + 1:3d}/{args.pairs}: wall gantoolkit {t[0]:.4f} reference {r[0]:.4f} s/step "
                  f"(ratio {t[0] / r[0]:.4f})   cpu {t[1]:.4f} {r[1]:.4f} (ratio {t[1] / r[1]:.4f})", flush=True)
        loggers.close()
    summary = {}
    for i, clock in enumerate(("wall", "cpu")):
        ratios = [t[i] / r[i] for t, r in zip(toolkit, reference, strict=True)]
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        summary[clock] = {"toolkit_s_per_step": statistics.median(t[i] for t in toolkit),
                          "reference_s_per_step": statistics.median(r[i] for r in reference),
                          "ratios": ratios, "median_ratio": statistics.median(ratios), "quartiles": [q[0], q[2]]}
    print()
    where = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{args.arch} 64x64, batch 64, {where}, toolkit {extra}, {args.pairs} pairs of {args.block} steps")
    other = "without loggers" if args.against == "toolkit" else "pytorch/examples"
    print(f"{'':14} {'gantool train':>14} {other:>17} {'median ratio':>13}   quartiles")
    for clock, row in summary.items():
        print(f"{clock + ' s/step':14} {row['toolkit_s_per_step']:14.4f} {row['reference_s_per_step']:17.4f} "
              f"{row['median_ratio']:13.4f}   {row['quartiles'][0]:.4f}..{row['quartiles'][1]:.4f}")
    if cuda:
        for side, key in (("toolkit", "toolkit_s_per_step"), ("reference", "reference_s_per_step")):
            summary[side] = {"images_per_s": 64 / summary["wall"][key], "peak_memory_mb": max(peaks[side]) / 2**20}
            print(f"{side:10} {summary[side]['images_per_s']:10.1f} images/s   peak memory "
                  f"{summary[side]['peak_memory_mb']:.0f} MB")
    ratio = summary["wall"]["median_ratio"]
    if args.against == "toolkit":
        verdict = "within" if ratio <= LOGGER_LIMIT else "OVER"
        print(f"anchor: --logger {args.logger} over the same run without it, median wall-clock ratio <= "
              f"{LOGGER_LIMIT} -> {ratio:.4f} {verdict} (CPU {summary['cpu']['median_ratio']:.4f})")
    else:
        verdict = "meets the goal" if ratio <= GOAL else ("within the limit" if ratio <= LIMIT else "OVER THE LIMIT")
        print(f"anchor: median wall-clock ratio <= {GOAL} (goal), <= {LIMIT} (limit) -> {ratio:.4f} {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "overhead", "flags": {**FLAGS, **extra}, "device": where, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "pairs": args.pairs, "block_steps": args.block, "warmup_steps": args.warmup,
        **summary, "median_ratio": ratio, "against": args.against,
        **({"limit": LOGGER_LIMIT} if args.against == "toolkit" else {"goal": GOAL, "limit": LIMIT}),
        "load_average": os.getloadavg(), "cpus": os.cpu_count(),
        **({} if args.against == "toolkit" else
           {"reference_loss": "BCELoss after the example's Sigmoid (gantoolkit: BCE with logits, no Sigmoid)"}),
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
