"""Time per update of the Gradio demo, per control, for a 64x64 DCGAN on the CPU: on the server and in the browser.

An untrained conditional DCGAN at 64x64 (pytorch/examples' size: ngf = ndf = 64, latent 100) is written with
`gantool train --steps 1` (the weights do not change the cost), loaded once with its 5 SeFa directions, and each
control is exercised as the page does it, at three levels:

- callback: the demo's own callback (checks the values, generates, composes and enlarges, writes the download PNG)
- gradio:   `Blocks.process_api`, the whole server-side path of one event (Gradio's pre- and post-processing,
            which caches the image as a PNG, plus the callback); the network and the browser are not counted
- browser:  the page served on 127.0.0.1 and driven in headless Chromium (/usr/bin/chromium): the time from the
            action (typing a seed, moving a slider, choosing a grid) until the new picture has loaded in the page,
            and the time from opening the page until its first picture has loaded (a fresh browser context each
            time, so nothing is cached)

Prints the median and 90th percentile per control and writes benchmarks/results/demo_latency.json.

    python benchmarks/demo_latency.py [--repeats 30] [--browser-repeats 10] [--threads 0 (torch default)]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GANTOOL_DISABLE_PLUGIN_AUTOLOAD", "1")

RESULTS = Path(__file__).parent / "results"


def make_checkpoint(root: Path) -> Path:
    from typer.testing import CliRunner

    from gantoolkit.cli import build_app

    args = ["train", "--data", "digits", "--image-size", "64", "--arch", "dcgan", "--loss", "bce", "--cond", "onehot",
            "--batch-size", "8", "--steps", "1", "--log-every", "1", "--out", str(root / "run")]
    result = CliRunner().invoke(build_app(), args)
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return root / "run"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fns: dict[str, Callable[[int], Any]], repeats: int, warmup: int = 3) -> dict[str, list[float]]:
    """Milliseconds of each fn(i) for i = 0..repeats-1 (each call changes the value, as a person moving a control),
    the functions interleaved so that a shared machine's changing load falls on all of them alike."""
    for i in range(warmup):
        for fn in fns.values():
            fn(i)
    out: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(i)
            out[name].append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--browser-repeats", type=int, default=10, help="browser measurements per case (0: none)")
    args = parser.parse_args()

    import gradio as gr
    import torch
    from gradio.state_holder import SessionState

    from gantoolkit.demo.app import DemoCallbacks, build_blocks
    from gantoolkit.demo.engine import DemoEngine

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="demo-latency-"))
    os.environ.setdefault("GRADIO_TEMP_DIR", str(work / "gradio"))
    engine = DemoEngine.load(make_checkpoint(work))
    engine.warm_up()
    callbacks = DemoCallbacks(engine, work / "downloads")
    blocks = build_blocks(engine, callbacks)
    rest = [0.0] * len(engine.controls)
    assert engine.model.data.shape[1:] == (64, 64) and len(rest) == 5

    # (name, inputs of the render callback for step i) -- every step changes the control it names
    render_cases: dict[str, Callable[[int], list[Any]]] = {
        "seed change": lambda i: [i, "0", 0, 1, *rest],
        "slider move": lambda i: [0, "0", 0, 1, round(-4 + 8 * (i % 17) / 16, 1), *rest[1:]],
        "class change": lambda i: [0, str(i % 10), 0, 1, *rest],
        "truncation": lambda i: [0, "0", round(0.5 + (i % 10) / 10, 2), 1, *rest],
        "grid 4x4": lambda i: [i, "0", 0, 4, *rest],
        "grid 8x8": lambda i: [i, "0", 0, 8, *rest],
    }
    walk = lambda i: [i, "0", 0, 1, i + 1, 8, bool(i % 2), *rest]  # noqa: E731

    fns = {fn.api_name: fn for fn in blocks.fns.values()}
    state = SessionState(blocks)

    def through_gradio(api_name: str, inputs: list[Any]) -> None:
        fn = fns[api_name]
        payload = [*inputs, None] if api_name == "render" else inputs  # the session's edit (a gr.State)
        out = asyncio.run(blocks.process_api(block_fn=fn, inputs=payload, state=state))
        assert "data" in out, out

    # Gradio runs callbacks in worker threads, so the callbacks are timed in one too (on a busy machine, torch in
    # the main thread can be several times slower than in a worker thread)
    pool = ThreadPoolExecutor(max_workers=1)
    rows: dict[str, dict[str, Any]] = {}
    for name, case in render_cases.items():
        rows[name] = pool.submit(timed, {"callback_ms": lambda i, c=case: callbacks.render(*c(i), None),
                                         "gradio_ms": lambda i, c=case: through_gradio("render", c(i))},
                                 args.repeats).result()
    rows["interpolation (8 frames)"] = pool.submit(
        timed, {"callback_ms": lambda i: callbacks.interpolate(*walk(i)),
                "gradio_ms": lambda i: through_gradio("interpolate", walk(i))}, args.repeats).result()
    pool.shutdown()
    browser = in_the_browser(engine, work, args.browser_repeats) if args.browser_repeats else {}

    print(f"demo latency, 64x64 DCGAN (latent 100, ngf 64), CPU, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, gradio {gr.__version__}")
    print(f"{'control':26} {'callback median':>16} {'p90':>8} {'gradio median':>14} {'p90':>8}   (ms)")
    summary = {}
    for name, row in rows.items():
        stats = {f"{level}_{q}": round(f(row[f"{level}_ms"]), 2)
                 for level in ("callback", "gradio")
                 for q, f in (("median", statistics.median), ("p90", lambda v: percentile(v, 0.9)))}
        summary[name] = stats
        print(f"{name:26} {stats['callback_median']:16.1f} {stats['callback_p90']:8.1f} "
              f"{stats['gradio_median']:14.1f} {stats['gradio_p90']:8.1f}")
    if browser:
        print(f"\n{'in the browser':26} {'median':>16} {'p90':>8}   (ms, action to new picture loaded)")
        for name, values in browser.items():
            stats = {"browser_median": round(statistics.median(values), 1),
                     "browser_p90": round(percentile(values, 0.9), 1)}
            summary.setdefault(name, {}).update(stats)
            print(f"{name:26} {stats['browser_median']:16.1f} {stats['browser_p90']:8.1f}")
        rows.update({f"browser {name}": {"browser_ms": values} for name, values in browser.items()})
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "demo_latency.json"
    out.write_text(json.dumps({
        "model": {"arch": "dcgan", "image": [1, 64, 64], "latent_dim": engine.model.latent_dim, "trained": False,
                  "directions": [c.name for c in engine.controls]},
        "repeats": args.repeats, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0], "machine": platform.machine(), "torch": torch.__version__,
        "gradio": gr.__version__, "results": summary, "raw": rows,
    }, indent=1) + "\n")
    print(f"wrote {out}")


PICTURE_LOADED = ("(old) => { const i = document.querySelector('#picture img');"
                  " return i && i.src && i.src !== old && i.complete && i.naturalWidth > 0; }")


def in_the_browser(engine: Any, work: Path, repeats: int) -> dict[str, list[float]]:
    """Milliseconds per case in headless Chromium against the page served on 127.0.0.1 (see the module docstring)."""
    import socket

    from playwright.sync_api import sync_playwright

    from gantoolkit.demo.app import DemoCallbacks, build_blocks, launch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    blocks = build_blocks(engine, DemoCallbacks(engine, work / "browser-downloads"))
    launch(blocks, "127.0.0.1", port, block=False)
    url = f"http://127.0.0.1:{port}/"
    out: dict[str, list[float]] = {"first picture after page load": [], "seed change": [], "slider move": [],
                                   "grid 4x4": []}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--headless", "--no-sandbox", "--disable-gpu",
                                              "--disable-background-networking", "--disable-component-update"])
            for i in range(repeats + 1):  # the first of each is a warm-up
                context = browser.new_context(viewport={"width": 1200, "height": 900})
                page = context.new_page()
                page.set_default_timeout(120_000)
                start = time.perf_counter()
                page.goto(url)
                page.wait_for_function(PICTURE_LOADED, arg="")
                loaded = (time.perf_counter() - start) * 1000
                timings = {}
                # (case, the input, the value typed or set: a change on this fresh page)
                for name, selector, value in [("seed change", "#seed input", str(100 + i)),
                                              ("slider move", "#control-0 input[type=range]", f"{1 + i % 3}"),
                                              ("grid 4x4", "#grid input[type=range]", "4")]:
                    old = page.get_attribute("#picture img", "src") or ""
                    start = time.perf_counter()
                    page.locator(selector).fill(value)
                    if name == "seed change":
                        page.locator(selector).press("Enter")
                    page.wait_for_function(PICTURE_LOADED, arg=old)
                    timings[name] = (time.perf_counter() - start) * 1000
                context.close()
                if i:
                    out["first picture after page load"].append(loaded)
                    for name, ms in timings.items():
                        out[name].append(ms)
            browser.close()
    finally:
        blocks.close()
    return out


if __name__ == "__main__":
    main()
