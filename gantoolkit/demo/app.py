"""The Gradio layer of the demo: widgets, thin callbacks, and a launch that stays on this machine.

`DemoCallbacks` turns raw widget values (as the page or Gradio's API sends them) into `DemoEngine` calls; anything
wrong becomes a `gr.Error` with one clear line, never a traceback. `build_blocks` lays out the page; `launch` serves
it on 127.0.0.1 by default, with sharing, analytics, monitoring, MCP and file access beyond Gradio's own cache off.
No callback takes a file path: every file comes from the command line.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry

import atexit
import hashlib
import html
import json
import random
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from gantoolkit.demo.controls import Control, shown
from gantoolkit.demo.engine import (
    MAX_EDIT_STEPS,
    MAX_FRAMES,
    MAX_GRID,
    MAX_SEED,
    MAX_TRUNCATION,
    DemoEngine,
    Edit,
    Picture,
    Settings,
)
from gantoolkit.demo.run_view import run_view
from gantoolkit.errors import ConfigError, GanToolkitError

#: the categorical selector's choice that keeps each sample's own category
OWN = "each sample's own"
#: seeds the random button draws from (short enough to type back)
RANDOM_SEEDS = 2**31 - 1
#: download files kept in the demo's folder (older ones have been copied into Gradio's cache already)
KEEP_DOWNLOADS = 256
#: Gradio's cache: every hour, files older than an hour are deleted
DELETE_CACHE = (3600, 3600)


ComponentT = TypeVar("ComponentT", bound=gr.components.Component)


def as_sent(component: ComponentT) -> ComponentT:
    """`component` handing its callbacks each value exactly as it was sent. Gradio's own input checks fail on a
    value of the wrong type (text for a slider, None, a list) with a traceback in the server's log; the callbacks
    check every value themselves (`DemoEngine.settings`) and refuse it in one line. (An instance attribute, not a
    subclass: Gradio writes a .pyi file beside the module of every component subclass.)"""
    component.preprocess = _unchanged  # type: ignore[method-assign]
    return component


def _unchanged(payload: Any) -> Any:
    return payload


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A callback whose failures reach the page (or the API client) as one `gr.Error` line."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except GanToolkitError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:  # a bug, not the user's fault: keep the server up and say so
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(f"unexpected {type(e).__name__}: {str(e)[:200]}", print_exception=False) from None

    return wrapper


def md(text: Any) -> str:
    """Text from a checkpoint shown literally in Markdown (no markup, no HTML, no table breaks)."""
    marked = "".join("\\" + ch if ch in "\\`*_{}[]()#+-.!~|" else ch for ch in " ".join(str(text).split()))
    return html.escape(marked, quote=False)


def summary_markdown(summary: dict[str, Any], notes: list[str]) -> str:
    """The checkpoint's summary as a two-column table."""

    def component(raw: dict[str, Any]) -> str:
        options = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(raw.get("options", {}).items()))
        return f"{raw.get('name')}" + (f" ({options})" if options else "")

    data = summary.get("data", {})
    classes = data.get("class_names") or []
    rows = [
        ("architecture", component(summary["arch"])),
        ("loss", component(summary["loss"])),
        ("conditioning", component(summary["cond"])),
        ("controllers", ", ".join(component(c) for c in summary.get("controllers", [])) or "none"),
        ("step", summary.get("step")),
        ("data", f"{data.get('source')} ({data.get('modality')} {'×'.join(map(str, data.get('shape', [])))})"),
        ("classes", f"{len(classes)}: {', '.join(classes[:20])}{' …' if len(classes) > 20 else ''}"
         if classes else "none"),
        ("latent size", summary.get("latent_dim")),
        ("weights", "EMA generator" if summary.get("ema") else "generator"),
        ("controls", "; ".join(notes) or "none"),
        ("file", summary.get("path")),
        ("written by", f"gantoolkit {summary.get('gantoolkit_version')} on {summary.get('created')}"),
    ]
    lines = [f"| **{md(k)}** | {md(v)} |" for k, v in rows]
    return "\n".join([lines[0], "|---|---|", *lines[1:]])  # the first row is the table's header


class DemoCallbacks:
    """The page's callbacks over one engine. Each takes widget values and returns widget values; the control values
    (one per `engine.controls`, in order) come last in `*values`."""

    def __init__(self, engine: DemoEngine, folder: Path | None = None) -> None:
        self.engine = engine
        if folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="gantool-demo-"))
            atexit.register(shutil.rmtree, self.folder, True)
        else:
            self.folder = Path(folder)
            self.folder.mkdir(parents=True, exist_ok=True)

    # -- widget values -> engine -------------------------------------------------------------------------------------

    def widget_value(self, index: int, value: Any) -> Any:
        """A control's widget value as the engine takes it (a categorical selector sends text)."""
        control = self.engine.controls[index]
        if control.kind != "category":
            return value
        if value is None or value == OWN:
            return None
        if isinstance(value, str) and value.isdecimal() and len(value) <= 9:
            return int(value)
        if isinstance(value, str):
            raise ConfigError(f"{control.name} takes {OWN!r} or a category 0..{control.size - 1}, got {shown(value)}")
        return value  # a number, or something else the control refuses in one line

    def settings(self, seed: Any, class_name: Any, truncation: Any, grid: Any, values: tuple[Any, ...]) -> Settings:
        controls = self.engine.controls
        if len(values) != len(controls):
            raise ConfigError(f"expected {len(controls)} control values, got {len(values)}")
        named = {c.name: self.widget_value(i, v) for i, (c, v) in enumerate(zip(controls, values, strict=True))}
        return self.engine.settings(seed, None if class_name in (None, "") else class_name, truncation, grid, named)

    def saved(self, picture: Picture) -> str:
        """The PNG of the picture just made, in this demo's own folder (what the download button serves; Gradio
        copies it into its cache). The folder keeps the newest KEEP_DOWNLOADS files."""
        path = self.folder / f"gantool-demo-{hashlib.sha256(picture.png).hexdigest()[:20]}.png"
        if not path.exists():
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_bytes(picture.png)
            tmp.replace(path)
            others = sorted((f for f in self.folder.glob("gantool-demo-*.png") if f != path),
                            key=lambda f: f.stat().st_mtime_ns)
            for old in others[: max(0, len(others) - (KEEP_DOWNLOADS - 1))]:
                old.unlink(missing_ok=True)
        return str(path)

    def status(self, s: Settings, picture: Picture) -> str:
        parts = [f"seed {s.seed}"]
        if s.class_index is not None:
            parts.append(f"class {md(self.engine.class_names[s.class_index])}")
        if s.truncation:
            parts.append(f"truncation {s.truncation:g}")
        if s.grid > 1:
            parts.append(f"{s.grid}×{s.grid} grid")
        if picture.note:
            parts.append(md(picture.note))
        parts.append(f"{picture.seconds * 1000:.0f} ms on the server")
        return " · ".join(parts)

    # -- callbacks ---------------------------------------------------------------------------------------------------

    @guarded
    def render(self, seed: Any, class_name: Any, truncation: Any, grid: Any, *rest: Any) -> tuple[Any, str, str]:
        """Any control moved: (image, download file, status). The last of `rest` is the edit kept in the session."""
        *values, edit = rest
        s = self.settings(seed, class_name, truncation, grid, tuple(values))
        picture = self.engine.render(s, edit if isinstance(edit, Edit) else None)
        return picture.display, self.saved(picture), self.status(s, picture)

    @guarded
    def random_seed(self) -> int:
        """The random button: a fresh seed (the seed box's change then redraws)."""
        return random.randrange(RANDOM_SEEDS)

    @guarded
    def reset_controls(self) -> list[Any]:
        """Every direction back to its start."""
        return [OWN if c.kind == "category" else c.default for c in self.engine.controls]

    @guarded
    def interpolate(self, seed: Any, class_name: Any, truncation: Any, grid: Any, to_seed: Any, frames: Any,
                    spherical: Any, *values: Any) -> tuple[Any, str]:
        """The interpolation strip from the current seed to `to_seed`: (image, status)."""
        s = self.settings(seed, class_name, truncation, grid, tuple(values))
        if not isinstance(spherical, bool):
            raise ConfigError(f"slerp must be true or false, got {shown(spherical)}")
        picture = self.engine.interpolation(s, to_seed, frames, spherical)
        how = "slerp" if spherical else "lerp"
        return picture.display, f"{how} from seed {s.seed} to seed {int(to_seed)} · {picture.seconds * 1000:.0f} ms"

    @guarded
    def more_of(self, seed: Any, class_name: Any, truncation: Any, grid: Any, target: Any, steps: Any,
                *rest: Any) -> tuple[Any, str, str, Edit, str]:
        """"More of" a classifier class: (image, download file, status, the session's new edit, edit message)."""
        *values, edit = rest
        s = self.settings(seed, class_name, truncation, grid, tuple(values))
        new, picture, message = self.engine.more_of(s, target, steps, edit if isinstance(edit, Edit) else None)
        return picture.display, self.saved(picture), self.status(s, picture), new, message

    @guarded
    def reset_edit(self, seed: Any, class_name: Any, truncation: Any, grid: Any, *values: Any) -> tuple[Any, str,
                                                                                                        str, None, str]:
        """Forget the classifier edit: (image, download file, status, no edit, message)."""
        image, path, status = self.render(seed, class_name, truncation, grid, *values, None)
        return image, path, status, None, "no edit"


def control_widget(control: Control, index: int) -> gr.Slider | gr.Dropdown:
    """A slider for a direction or a continuous code; a selector for a categorical code."""
    if control.kind == "category":
        return gr.Dropdown([OWN, *map(str, range(control.size))], value=OWN, label=control.name,
                           info=f"categorical code ({control.source})", elem_id=f"control-{index}")
    what = "direction" if control.kind == "z" else "code (sets it)"
    return gr.Slider(control.minimum, control.maximum, value=control.default, step=control.step,
                     label=control.name, info=f"{what} · {control.source}", elem_id=f"control-{index}")


def build_blocks(engine: DemoEngine, callbacks: DemoCallbacks | None = None) -> gr.Blocks:
    """The page (see the issue: seed, class, truncation, directions, interpolation, grid, more-of, download,
    summary)."""
    cb = callbacks or DemoCallbacks(engine)
    model = engine.model
    title = f"gantoolkit demo · {model.checkpoint.path.name}"
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=DELETE_CACHE) as blocks:
        gr.Markdown(f"## gantoolkit demo\n{md(model.checkpoint.path.name)} · step {model.checkpoint.step}")
        edit = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                with gr.Row():
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED, elem_id="seed",
                                     scale=3)
                    dice = gr.Button("Random", elem_id="random", scale=1)
                classes = engine.class_names
                class_box = gr.Dropdown(classes, value=classes[0] if classes else None, label="Class",
                                        visible=bool(classes), elem_id="class")
                truncation = gr.Slider(0, MAX_TRUNCATION, value=0, step=0.05, label="Truncation",
                                       info="redraw entries of z beyond ±t (0 = off)", elem_id="truncation")
                grid = gr.Slider(1, MAX_GRID, value=1, step=1, label="Grid size", info="grid × grid samples",
                                 elem_id="grid")
                gr.Markdown("### Directions" if engine.controls else "### Directions\nnone: " + md(
                    "; ".join(engine.notes) or "give --directions FILE"))
                widgets = [control_widget(c, i) for i, c in enumerate(engine.controls)]
                reset = gr.Button("Reset directions", elem_id="reset", visible=bool(widgets))
            with gr.Column(scale=2, min_width=320):
                image = gr.Image(label="Generated", format="png", type="numpy", interactive=False,
                                 buttons=["download", "fullscreen"], elem_id="picture")
                status = gr.Markdown(elem_id="status")
                download = gr.DownloadButton("Download PNG (the generator's pixels)", elem_id="download")
        with gr.Accordion("More of a class (classifier-gradient steps on z)", visible=engine.classifier is not None,
                          open=True):
            targets = engine.target_names
            with gr.Row():
                target = gr.Dropdown(targets, value=targets[0] if targets else None, label="Towards",
                                     elem_id="target")
                steps = gr.Slider(1, MAX_EDIT_STEPS, value=10, step=1, label="Steps per click", elem_id="steps")
            with gr.Row():
                more = gr.Button("More of it", variant="primary", elem_id="more")
                forget = gr.Button("Reset edit", elem_id="reset-edit")
            edit_note = gr.Markdown("no edit", elem_id="edit-note")
        with gr.Accordion("Interpolation", open=False, visible=model.data.is_image):
            with gr.Row():
                to_seed = gr.Number(1, label="To seed", precision=0, minimum=0, maximum=MAX_SEED, elem_id="to-seed")
                frames = gr.Slider(2, MAX_FRAMES, value=8, step=1, label="Frames", elem_id="frames")
                slerp = gr.Checkbox(False, label="slerp", elem_id="slerp")
                walk = gr.Button("Interpolate", elem_id="interpolate")
            strip = gr.Image(label="From seed to seed", format="png", type="numpy", interactive=False,
                             buttons=["download"], elem_id="strip")
            strip_note = gr.Markdown(elem_id="strip-note")
        with gr.Accordion("Checkpoint", open=False):
            gr.Markdown(summary_markdown(engine.summary(), engine.notes), elem_id="summary")
        with gr.Accordion("Run: curves and configuration", open=False, elem_id="run"):
            curves, about = run_view(model.checkpoint.path, model.checkpoint.config.to_json())
            gr.Image(curves, label="Curves", format="png", type="numpy", interactive=False, visible=curves is not None,
                     buttons=["fullscreen"], elem_id="run-curves")
            gr.Markdown(about, elem_id="run-config")

        for widget in (seed, class_box, truncation, grid, *widgets, target, steps, to_seed, frames, slerp):
            as_sent(widget)  # the callbacks check every value (type and range) themselves
        base = [seed, class_box, truncation, grid]
        shown = [image, download, status]
        gr.on([seed.change, class_box.change, truncation.change, grid.change, *(w.change for w in widgets)],
              cb.render, [*base, *widgets, edit], shown, api_name="render", trigger_mode="always_last",
              show_progress="hidden")
        blocks.load(cb.render, [*base, *widgets, edit], shown, api_visibility="undocumented")
        dice.click(cb.random_seed, None, seed, api_name="random_seed")
        reset.click(cb.reset_controls, None, widgets, api_name="reset_controls")
        walk.click(cb.interpolate, [*base, to_seed, frames, slerp, *widgets], [strip, strip_note],
                   api_name="interpolate")
        more.click(cb.more_of, [*base, target, steps, *widgets, edit], [*shown, edit, edit_note], api_name="more_of")
        forget.click(cb.reset_edit, [*base, *widgets], [*shown, edit, edit_note], api_name="reset_edit")
    return blocks


def theme() -> gr.themes.Base:
    """Gradio's default look with system fonts only: the page never asks another host for anything."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Default(font=system, font_mono=["ui-monospace", "monospace"])


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def launch(blocks: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> Any:
    """Serve the page on host:port only (no share link, no analytics, no file access beyond Gradio's cache).
    Blocking, SIGTERM stops it as Ctrl-C does (the server closes and the demo's temporary files are removed)."""
    if block and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return blocks.queue(default_concurrency_limit=1).launch(
            server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=not block,
            allowed_paths=[], max_file_size=0, enable_monitoring=False, ssr_mode=False, mcp_server=False,
            pwa=False, show_error=False, quiet=False, theme=theme(), footer_links=["api"],
        )
    except OSError as e:
        reason = str(e).split(". ")[0]  # Gradio's advice about its own environment variables does not apply here
        raise ConfigError(f"cannot serve on {host}:{port} ({reason})", "choose another --port (or --host)") from None
