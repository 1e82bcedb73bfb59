"""`gantool report RUN`: one self-contained HTML page per run.

Sections: what the run is (components with their resolved options and plugin versions, data, steps, time), its
curves (`curves.plot_png`), the sample grid of every saved step as a strip, the newest evaluation report
`gantool evaluate` wrote into the run, and the nearest-training-images figure when that report has one. Every image
is inlined as a data: URI and the page's Content-Security-Policy allows nothing else, so opening it makes no request
to any host. Every string from the run is HTML-escaped. Narrow screens get one column; wide tables scroll.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any

from gantoolkit import __version__
from gantoolkit.curves import RunLog, plot_png
from gantoolkit.files import runs
from gantoolkit.files.outputs import HTML_MARK as _MARK
from gantoolkit.files.outputs import REPORT, identify

#: the mark `outputs.identify` reads in a page's first bytes
HTML_MARK = _MARK.decode() + f' {__version__} run report">'
#: the page's sections: (id, heading)
SECTIONS = (("run", "The run"), ("curves", "Curves"), ("samples", "Samples through training"),
            ("evaluation", "Evaluation"), ("nearest", "Nearest training images"))
#: at most this many sample grids in the strip (evenly spaced over the saved steps, the last one always)
MAX_GRIDS = 24
_SAMPLE = re.compile(r"^step-(\d+)\.png$")

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:12px;
color:#1d1d1f;background:#fff;line-height:1.4;overflow-wrap:anywhere}
h1{font-size:1.4em;word-break:break-all}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:4px}
section{margin-bottom:24px}.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9em}
td,th{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
td code{word-break:break-all}img{max-width:100%;height:auto;image-rendering:pixelated}
.strip{display:flex;gap:8px;overflow-x:auto;padding-bottom:6px}
.strip figure{margin:0;flex:0 0 auto;width:140px;text-align:center;font-size:.8em}
.strip img{width:140px}.muted{color:#666}code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:1em}
.figure img{width:480px;max-width:100%}
"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _options(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in options.items())


def sample_grids(run: Path) -> list[tuple[int, Path]]:
    """(step, path) of the run's saved grids, oldest first, at most `MAX_GRIDS` (evenly spaced, the last kept)."""
    folder = Path(run) / runs.SAMPLES
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _SAMPLE.match(p.name)) and p.is_file()) \
        if folder.is_dir() else []
    if len(found) <= MAX_GRIDS:
        return found
    picks = {round(i * (len(found) - 1) / (MAX_GRIDS - 1)) for i in range(MAX_GRIDS)}
    return [found[i] for i in sorted(picks)]


def newest_evaluation(run: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest evaluation report (a JSON `gantool evaluate` wrote) in the run directory, with its contents."""
    reports = [p for p in Path(run).glob("*.json") if identify(p)[0] == REPORT]
    for path in sorted(reports, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            return path, json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return None


def _nearest_figure(report: Path, data: dict[str, Any]) -> Path | None:
    """The `nn` metric's figure named in the report (or found beside it), when it is a PNG gantool wrote."""
    meta: dict[str, Any] = data["meta"] if isinstance(data.get("meta"), dict) else {}
    named = (meta.get("artefacts") or {}).get("nn") if isinstance(meta.get("artefacts"), dict) else None
    candidates = [Path(named)] if isinstance(named, str) else []
    candidates += [report.with_name(f"{report.stem}.nn.png"), report.parent / Path(str(named or "")).name]
    for path in candidates:
        if path.name and identify(path)[0] == "png":
            return path
    return None


def _run_section(summary: dict[str, Any] | None, log: RunLog) -> str:
    rows: list[tuple[str, str]] = []
    if summary is not None:
        config, data = summary["config"], summary["data"]
        parts = [(label, config.get(key) or {}) for key, label in (("arch", "architecture"), ("loss", "loss"),
                                                                    ("cond", "conditioning"), ("data", "data"))]
        parts += [("controller", choice) for choice in config.get("controllers") or []]
        for label, choice in parts:
            rows.append((label, f"<code>{_e(choice.get('name'))}</code> {_e(_options(choice.get('options') or {}))}"))
        shape = "×".join(str(s) for s in data.get("shape", ()))
        classes = data.get("num_classes") or 0
        rows.append(("data shape", _e(f"{data.get('modality', '')} {shape}, {classes or 'no'} classes")))
        rows.append(("steps", _e(f"{summary['step']:,} of {config.get('steps', 0):,} "
                                 f"(batch {config.get('batch_size')}, seed {config.get('seed')})")))
        for key, value in sorted((summary.get("components") or {}).items()):
            if isinstance(value, dict):
                source = " ".join(str(value.get(k) or "") for k in ("distribution", "version")).strip()
                rows.append((f"plugin of {key}", _e(source or value.get("plugin") or "?")))
        rows.append(("written by", _e(f"gantoolkit {summary.get('gantoolkit_version')}, torch "
                                      f"{summary.get('torch_version')}, {summary.get('created')}")))
    from gantoolkit.training.progress import format_duration

    rows.append(("training time", _e(format_duration(log.training_seconds()))))
    rows.append(("logged", _e(f"{len(log.records):,} lines, last at step {log.records[-1]['step']:,}"
                              f"{f', {len(log.rollbacks())} rollbacks' if log.rollbacks() else ''}")))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    if summary is not None:
        body += (f'<tr><th>configuration</th><td><details><summary>every setting</summary><pre>'
                 f'{_e(json.dumps(summary["config"], indent=1, sort_keys=True))}</pre></details></td></tr>')
    return f'<div class="scroll"><table>{body}</table></div>'


def _evaluation_section(found: tuple[Path, dict[str, Any]] | None, run: Path) -> tuple[str, str]:
    """(the evaluation section, the nearest-images section)."""
    if found is None:
        hint = f"gantool evaluate {run} --out {run / 'evaluation.json'}"
        none = f'<p class="muted">No evaluation report in the run yet: <code>{_e(hint)}</code> writes one.</p>'
        return none, '<p class="muted">No figure: the <code>nn</code> metric of an evaluation draws it.</p>'
    path, data = found
    numbers = {k: v for k, v in data.items() if k != "meta"}
    meta: dict[str, Any] = data["meta"] if isinstance(data.get("meta"), dict) else {}
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_number(v))}</td></tr>" for k, v in numbers.items())
    about = ", ".join(f"{k} {meta[k]}" for k in ("step", "n_samples", "features", "sampler") if k in meta)
    evaluation = (f'<p class="muted">{_e(path.name)}{_e(": " + about) if about else ""}</p>'
                  f'<div class="scroll"><table>{rows}</table></div>')
    figure = _nearest_figure(path, data)
    if figure is None:
        return evaluation, '<p class="muted">The evaluation has no nearest-images figure (metric <code>nn</code>).</p>'
    nearest = (f'<div class="figure"><img alt="each sample beside its nearest training images" '
               f'src="{_data_uri(figure.read_bytes())}"></div><p class="muted">{_e(figure.name)}</p>')
    return evaluation, nearest


def _number(value: Any) -> str:
    return "undefined" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def build_report(run: Path, log: RunLog, summary: dict[str, Any] | None) -> bytes:
    """The page's bytes. `summary` is the newest checkpoint's (`Checkpoint.summary()`), None when it has none."""
    run = Path(run)
    curves = f'<img alt="the run\'s curves" src="{_data_uri(plot_png([log]))}">'
    grids = sample_grids(run)
    strip = "".join(f'<figure><img alt="samples at step {step}" src="{_data_uri(path.read_bytes())}">'
                    f"<figcaption>step {step:,}</figcaption></figure>" for step, path in grids)
    final = runs.final_sample_path(run)
    if final.is_file():
        strip += (f'<figure><img alt="final samples" src="{_data_uri(final.read_bytes())}">'
                  "<figcaption>final</figcaption></figure>")
    samples = f'<div class="strip">{strip}</div>' if strip else '<p class="muted">No sample grid saved yet.</p>'
    evaluation, nearest = _evaluation_section(newest_evaluation(run), run)
    content = {"run": _run_section(summary, log), "curves": curves, "samples": samples, "evaluation": evaluation,
               "nearest": nearest}
    sections = "".join(f'<section id="{key}"><h2>{_e(title)}</h2>{content[key]}</section>' for key, title in SECTIONS)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head>" + HTML_MARK +
            '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'\">"
            f"<title>{_e(run.name)}: gantoolkit run report</title><style>{STYLE}</style></head><body>"
            f"<h1>{_e(run.name)}</h1><p class=\"muted\">{_e(run)}</p>{sections}</body></html>\n")
    return page.encode("utf-8")
