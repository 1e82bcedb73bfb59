"""A busy laptop: how the README's first run slows down when other programs compete for the CPU.

For each load level (0, 2, 4, 6 busy processes beside it, each a pure-Python spin loop, so the 1-minute load average
is about that number on top of the run itself), `gantool train` with the README's first-run settings runs a fixed
number of steps with each thread setting, in rounds that rotate their order; the seconds per step come from the
run's own metrics.jsonl (the steps between the first and last logged step, so start-up is not counted). Reported:
the median over rounds, and each setting's slow-down over the best idle setting. Writes results/threads.json.

    python benchmarks/threads.py                 # about 15 minutes on 2 cores
    python benchmarks/threads.py --loads 0,6 --rounds 1 --steps 60
    python benchmarks/threads.py --from-log results/threads.log   # the table again from a run's printed lines

Each measurement is printed as it is made and the JSON is rewritten after each load level, so a run cut short keeps
what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
#: the thread settings compared: name -> (extra gantool flags, extra environment)
SETTINGS: dict[str, tuple[list[str], dict[str, str]]] = {
    "before: 2 threads, libgomp's default waits (spin, then sleep)": (["--threads", "2"], {"GOMP_SPINCOUNT": "300000"}),
    "2 threads, waits always spin (OMP_WAIT_POLICY=ACTIVE)": (["--threads", "2"], {"OMP_WAIT_POLICY": "ACTIVE"}),
    "1 thread (--threads 1; the default on 2 CPUs or fewer)": (["--threads", "1"], {}),
    "2 threads, waits sleep (--threads 2; the default on more CPUs)": (["--threads", "2"], {}),
}
#: the names earlier runs printed for the same settings (read by --from-log)
RENAMED = {"1 thread (--threads 1)": "1 thread (--threads 1; the default on 2 CPUs or fewer)",
           "gantool's default now: 2 threads, waits sleep": "2 threads, waits sleep (--threads 2; the default on more "
                                                            "CPUs)"}
SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def seconds_per_step(flags: list[str], env: dict[str, str], steps: int, log_every: int) -> float:
    """Run the first run for `steps` steps; seconds per step between its first and last log line."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        command = ["gantool", "train", "--arch", "dcgan", "--loss", "wgan-gp", "--cond", "onehot", "--steps",
                   str(steps), "--log-every", str(log_every), "--sample-every", str(10**6), "--checkpoint-every",
                   str(10**6), "--out", str(run), *flags]
        environment = {k: v for k, v in os.environ.items()
                       if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        subprocess.run(command, env={**environment, **env}, check=True, capture_output=True, timeout=3600)
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first, last = records[0], records[-1]
    return (last["elapsed_s"] - first["elapsed_s"]) / (last["step"] - first["step"])


LINE = re.compile(r"^load (\d+)  (.+): ([0-9.]+) s/step$")


def from_log(path: Path) -> dict[str, dict[str, list[float]]]:
    """The measurements a run printed ("load N  SETTING: S s/step"), per load and setting; other lines skipped."""
    times: dict[str, dict[str, list[float]]] = {}
    for line in path.read_text().splitlines():
        if match := LINE.match(line):
            name = RENAMED.get(match[2], match[2])
            times.setdefault(match[1], {}).setdefault(name, []).append(float(match[3]))
    return times


def report(times: dict[str, dict[str, list[float]]], steps: int, out: Path) -> None:
    """Print the table (median per load and setting, and its slow-down over the best idle setting); write the JSON."""
    table = {load: {name: statistics.median(values) for name, values in row.items()} for load, row in times.items()}
    idle = min(table.get("0", next(iter(table.values()))).values())
    loads = list(table)
    rounds = {load: max(len(v) for v in row.values()) for load, row in times.items()}
    print(f"\nseconds per step of the README's first run ({steps} steps a run; median of the rounds: "
          + ", ".join(f"{rounds[n]} at {n} busy" for n in loads) + "); x = over the best idle setting\n")
    print("| setting | " + " | ".join(f"{n} busy" for n in loads) + " |")
    print("|---|" + "---|" * len(loads))
    for name in SETTINGS:
        cells = [f"{table[n][name]:.3f} s ({table[n][name] / idle:.1f}x)" if name in table[n] else "" for n in loads]
        print(f"| {name} | " + " | ".join(cells) + " |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"steps": steps, "rounds": rounds, "cpus": os.cpu_count(), "seconds_per_step": table,
                               "measurements": times}, indent=2) + "\n")
    print(f"\nwrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", default="0,2,4,6")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--from-log", type=Path, default=None, help="rebuild the table from a run's printed lines")
    parser.add_argument("--out", type=Path, default=RESULTS / "threads.json")
    args = parser.parse_args()
    if args.from_log:
        return report(from_log(args.from_log), args.steps, args.out)
    log_every = max(1, args.steps // 5)
    measured: dict[str, dict[str, list[float]]] = {}
    for load in (int(x) for x in args.loads.split(",")):
        spinners = [subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=3600)]) for _ in range(load)]
        try:
            time.sleep(2 if load else 0)
            times: dict[str, list[float]] = {name: [] for name in SETTINGS}
            names = list(SETTINGS)
            for r in range(args.rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    flags, env = SETTINGS[name]
                    times[name].append(seconds_per_step(flags, env, args.steps, log_every))
                    print(f"load {load}  {name}: {times[name][-1]:.3f} s/step", flush=True)
            measured[str(load)] = times
        finally:
            for p in spinners:
                p.kill()
                p.wait()
        report(measured, args.steps, args.out)


if __name__ == "__main__":
    main()
