"""How fast `gantool --help` answers (target: under 0.5 s, which needs torch kept off that path).

Runs the installed console script several times and reports the median wall time beside the target, and the
time of `python -c "import torch"` for scale. Writes benchmarks/results/cli_startup.json.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5
RUNS = 7


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    gantool = shutil.which("gantool")
    if gantool is None:
        sys.exit("gantool is not installed: pip install -e .")
    timed([gantool, "--help"])  # warm the file cache
    help_s = statistics.median(timed([gantool, "--help"]) for _ in range(RUNS))
    list_s = statistics.median(timed([gantool, "list", "losses"]) for _ in range(RUNS))
    torch_s = statistics.median(timed([sys.executable, "-c", "import torch"]) for _ in range(3))
    rows = [("gantool --help", help_s), ("gantool list losses", list_s), ("python -c 'import torch'", torch_s)]
    print(f"{'command':28} {'median s':>9}   target")
    for name, seconds in rows:
        anchor = "(for scale)" if name == rows[2][0] else f"< {TARGET_S:.1f}"
        print(f"{name:28} {seconds:9.3f}   {anchor}")
    out = Path(__file__).parent / "results" / "cli_startup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"help_s": help_s, "list_s": list_s, "import_torch_s": torch_s, "target_s": TARGET_S,
                               "runs": RUNS}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
