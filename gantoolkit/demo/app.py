"""The Gradio layer of the demo: widgets, thin callbacks, and a launch that stays on this machine.

`DemoCallbacks` turns raw widget values (as the page or Gradio's API sends them) into `DemoEngine` calls; anything
wrong becomes a `gr.Error` with one clear line, never a traceback. `build_blocks` lays out the page (on a phone the
picture comes first and stays in view) and names its API: each endpoint's inputs are named after the controls
(`api_parameters`) and each endpoint has a one-line description. `launch` serves it on 127.0.0.1 by default, with
sharing, analytics, monitoring, MCP and file access beyond Gradio's own cache off; an unknown endpoint is a 404, a
call with too many or too few values one line; Gradio's temporary files live in a folder of this demo's own that is
removed when it exits. No callback takes a file path: every file comes from the command line.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry
if "gradio" not in sys.modules:  # Gradio's import-time folders go into one removed on exit too
    _PARENT = os.environ.get("GRADIO_TEMP_DIR") or tempfile.gettempdir()
    os.makedirs(_PARENT, exist_ok=True)
    _IMPORT_CACHE = tempfile.mkdtemp(prefix="gantool-demo-gradio-", dir=_PARENT)
    atexit.register(shutil.rmtree, _IMPORT_CACHE, True)
    os.environ["GRADIO_TEMP_DIR"] = _IMPORT_CACHE

import hashlib
import html
import inspect
import json
import random
import re
import signal
import threading
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from gantoolkit.demo.controls import Control, shown
from gantoolkit.demo.engine import (
    DEFAULT_POINTS,
    MAX_EDIT_STEPS,
    MAX_FRAMES,
    MAX_GRID,
    MAX_POINTS,
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
#: Gradio's cache: every hour, files older than an hour are deleted (and the whole folder when the demo exits)
DELETE_CACHE = (3600, 3600)
#: names Gradio's client keeps for itself, and the fixed inputs' names (a control of such a name gets a suffix)
RESERVED = {"api_name", "fn_index", "result_callbacks", "seed", "class_name", "truncation", "grid", "points",
            "to_seed", "frames", "slerp", "target", "steps"}
#: narrow screens (phones): the picture first and pinned to the top while the controls scroll under it; pictures
#: and strips as wide as the screen
CSS = """
#picture img, #strip img, #before img, #after img { image-rendering: pixelated; }
.preview img { image-rendering: pixelated; width: 100%; height: auto; }
@media (max-width: 720px) {
  .gradio-container { overflow: clip !important; }  /* hidden would make it the scroller and stop the pinning */
  #layout { flex-direction: column; }
  #picture-column { order: -1; position: sticky; top: 0; z-index: 50; background: var(--body-background-fill);
                    padding-bottom: 4px; }
  #picture img { max-height: 40vh; width: auto; max-width: 100%; margin: 0 auto; }
  #download { min-height: 0; padding: 4px 8px; }
  #picture, #strip { width: 100%; }
  #strip img { width: 100%; height: auto; max-height: none; }
}
"""


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


def refused(where: str, message: str) -> gr.Error:
    """The error a refused request gets (one line, no traceback), after one line in the server's log saying so."""
    print(f"refused {where}: {message}", file=sys.stderr, flush=True)
    return gr.Error(message, print_exception=False)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A callback whose failures reach the page (or the API client) as one `gr.Error` line; each refusal is one
    line in the server's log."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except GanToolkitError as e:
            raise refused(fn.__name__, str(e)) from None
        except Exception as e:  # a bug, not the user's fault: keep the server up and say so
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(f"unexpected {type(e).__name__}: {str(e)[:200]}", print_exception=False) from None

    return wrapper


def md(text: Any) -> str:
    """Text from a checkpoint shown literally in Markdown (no markup, no HTML, no table breaks)."""
    marked = "".join("\\" + ch if ch in "\\`*_{}[]()#+-.!~|" else ch for ch in " ".join(str(text).split()))
    return html.escape(marked, quote=False)


def run_name(path: Path) -> str:
    """What a checkpoint is called on the page: its run's folder name and the file (`digits-dcgan/step_600`), never
    the server's path to it."""
    path = Path(path)
    if path.parent.name == "checkpoints" and path.parent.parent.name:
        return f"{path.parent.parent.name}/{path.stem}"
    return path.name


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
        ("run", run_name(Path(str(summary.get("path"))))),
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
        if s.points:
            parts.append(f"{s.points} points")
        elif s.grid > 1:
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
                *rest: Any) -> tuple[Any, str, str, Edit, str, Any, Any]:
        """"More of" a classifier class: (image, download file, status, the session's new edit, edit message, the
        picture before the edit, the edited picture)."""
        *values, edit = rest
        s = self.settings(seed, class_name, truncation, grid, tuple(values))
        new, before, picture, message = self.engine.more_of(s, target, steps, edit if isinstance(edit, Edit) else None)
        shown = picture.display
        return shown, self.saved(picture), self.status(s, picture), new, md(message), before.display, shown

    @guarded
    def reset_edit(self, seed: Any, class_name: Any, truncation: Any, grid: Any,
                   *values: Any) -> tuple[Any, str, str, None, str, None, None]:
        """Forget the classifier edit: (image, download file, status, no edit, message, no before, no after)."""
        image, path, status = self.render(seed, class_name, truncation, grid, *values, None)
        return image, path, status, None, "no edit", None, None


def control_widget(control: Control, index: int) -> gr.Slider | gr.Dropdown:
    """A slider for a direction or a continuous code; a selector for a categorical code."""
    if control.kind == "category":
        return gr.Dropdown([OWN, *map(str, range(control.size))], value=OWN, label=control.name,
                           info=f"categorical code ({control.source}): one category for every sample",
                           elem_id=f"control-{index}")
    what = "direction: moves the sample along it" if control.kind == "z" else "code: moves each sample's own code"
    return gr.Slider(control.minimum, control.maximum, value=control.default, step=control.step,
                     label=control.name, info=f"{what} · {control.source}", elem_id=f"control-{index}")


def api_parameters(engine: DemoEngine) -> list[str]:
    """The API's name for each control: its own name made an identifier (`sefa0`, `pca_safetensors_pca0`), unique,
    and never one of the fixed inputs' names."""
    names: list[str] = []
    for control in engine.controls:
        name = re.sub(r"\W+", "_", control.name).strip("_") or "control"
        if name[0].isdigit() or name in RESERVED:
            name = f"control_{name}"
        base, k = name, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def endpoint(fn: Callable[..., Any], names: list[str], description: str, state: bool = False) -> Callable[..., Any]:
    """`fn` seen by Gradio as a function of parameters called `names`, so that its API names each input after its
    control, described by `description`; with `state`, a last parameter takes the session's edit (a `gr.State`, not
    part of the API). Every parameter defaults to None in the signature: the API's default for an input is its
    control's starting value, and None for the class of an unconditional model (so it may be left out)."""

    def call(*args: Any) -> Any:
        return fn(*args)

    call.__name__ = call.__qualname__ = fn.__name__
    call.__doc__ = description
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter(n, kind, default=None) for n in [*names, *(["session_edit"] if state else [])]]
    call.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return call


def introduction(engine: DemoEngine) -> str:
    """The page's first sentence: what to do."""
    what = "images" if engine.model.data.is_image else "2-D points"
    steps = ["type a seed or press **Random** to draw another sample"]
    if engine.class_names:
        steps.append("choose a **Class**")
    if engine.controls:
        steps.append("move the sliders under **Directions** (the small strips show what each one changes)")
    return (f"This generator makes {what}. To explore it, " + ", ".join(steps[:-1]) +
            (" and " if len(steps) > 1 else "") + steps[-1] + ": the picture redraws as you go.")


def private_cache() -> Path:
    """A folder of this demo's own for Gradio's temporary files (inside GRADIO_TEMP_DIR or the system's temp
    folder), removed when the process exits; Gradio uses it for every component made from now on."""
    parent = os.environ.get("GRADIO_TEMP_DIR") or tempfile.gettempdir()
    Path(parent).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="gantool-demo-gradio-", dir=parent))
    atexit.register(shutil.rmtree, folder, True)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


def build_blocks(engine: DemoEngine, callbacks: DemoCallbacks | None = None) -> gr.Blocks:
    """The page: seed, class, truncation, grid (points for 2-D data), directions with their previews, "more like a
    class" with a before/after view, interpolation, download, summary; and its API (see the module docstring)."""
    cb = callbacks or DemoCallbacks(engine)
    private_cache()
    model = engine.model
    images = model.data.is_image
    name = run_name(model.checkpoint.path)
    first_settings = engine.default_settings()
    first = engine.render(first_settings)
    previews = engine.previews()
    with gr.Blocks(title=f"gantoolkit demo · {name}", analytics_enabled=False, delete_cache=DELETE_CACHE) as blocks:
        gr.Markdown(f"## gantoolkit demo · {md(name)} · step {model.checkpoint.step}\n{introduction(engine)}",
                    elem_id="intro")
        edit = gr.State(None)
        with gr.Row(elem_id="layout"):
            with gr.Column(scale=1, min_width=280, elem_id="controls-column"):
                with gr.Row():
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED, elem_id="seed",
                                     scale=3, info="the same seed always draws the same sample")
                    dice = gr.Button("Random", elem_id="random", scale=1)
                classes = engine.class_names
                class_box = gr.Dropdown(classes, value=classes[0] if classes else None, label="Class",
                                        visible=bool(classes), elem_id="class")
                truncation = gr.Slider(0, MAX_TRUNCATION, value=0, step=0.05, label="Truncation",
                                       info="redraw entries of z beyond ±t: typical samples (0 = off)",
                                       elem_id="truncation")
                if images:
                    grid = gr.Slider(1, MAX_GRID, value=1, step=1, label="Grid size", info="grid × grid samples",
                                     elem_id="grid")
                else:
                    grid = gr.Slider(64, MAX_POINTS, value=DEFAULT_POINTS, step=64, label="Points",
                                     info="how many points to draw", elem_id="points")
                gr.Markdown("### Directions" if engine.controls else "### Directions\nnone: " + md(
                    "; ".join(engine.notes) or "give --directions FILE"))
                widgets = []
                for i, control in enumerate(engine.controls):
                    widgets.append(control_widget(control, i))
                    if control.name in previews:
                        low, high = ("category 0", f"category {min(control.size, 10) - 1}") \
                            if control.kind == "category" else (f"{control.minimum:g}", f"{control.maximum:g}")
                        gr.Image(previews[control.name], show_label=False, interactive=False, buttons=[],
                                 format="png", elem_id=f"preview-{i}", elem_classes="preview",
                                 label=f"{control.name} from {low} (left) to {high} (right)")
                reset = gr.Button("Reset directions", elem_id="reset", visible=bool(widgets))
            with gr.Column(scale=2, min_width=320, elem_id="picture-column"):
                image = gr.Image(first.display, label="Generated", format="png", type="numpy", interactive=False,
                                 buttons=["fullscreen"], elem_id="picture")
                status = gr.Markdown(cb.status(first_settings, first), label="Status", elem_id="status")
                download = gr.DownloadButton("Download PNG (the generator's own pixels)",
                                             value=cb.saved(first), elem_id="download")
        targets = engine.target_names
        with gr.Accordion("Make it look more like a class (the classifier guides the sample)",
                          visible=engine.classifier is not None, open=True):
            gr.Markdown("Each click nudges the sample a few small steps in the direction that makes the classifier "
                        "more sure it shows the chosen class, and keeps the change for this seed.")
            with gr.Row():
                target = gr.Dropdown(targets, value=targets[0] if targets else None, label="More like",
                                     elem_id="target")
                steps = gr.Slider(1, MAX_EDIT_STEPS, value=10, step=1, label="Steps per click", elem_id="steps")
            with gr.Row():
                more = gr.Button("Nudge towards this class", variant="primary", elem_id="more")
                forget = gr.Button("Undo all nudges", elem_id="reset-edit")
            with gr.Row():
                before = gr.Image(label="Before", format="png", type="numpy", interactive=False,
                                  buttons=["fullscreen"], elem_id="before")
                after = gr.Image(label="After", format="png", type="numpy", interactive=False,
                                 buttons=["fullscreen"], elem_id="after")
            edit_note = gr.Markdown("no edit", label="Target probability per step", elem_id="edit-note")
        with gr.Accordion("Interpolation", open=False, visible=images):
            with gr.Row():
                to_seed = gr.Number(1, label="To seed", precision=0, minimum=0, maximum=MAX_SEED, elem_id="to-seed")
                frames = gr.Slider(2, MAX_FRAMES, value=8, step=1, label="Frames", elem_id="frames")
                slerp = gr.Checkbox(False, label="slerp", elem_id="slerp")
                walk = gr.Button("Interpolate", elem_id="interpolate")
            strip = gr.Image(label="From seed to seed", format="png", type="numpy", interactive=False,
                             buttons=["fullscreen"], elem_id="strip")
            strip_note = gr.Markdown(label="Strip status", elem_id="strip-note")
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
        size = "grid" if images else "points"
        base_names = ["seed", "class_name", "truncation", size]
        controls = api_parameters(engine)
        shown = [image, download, status]
        gr.on([seed.change, class_box.change, truncation.change, grid.change, *(w.change for w in widgets)],
              endpoint(cb.render, [*base_names, *controls],
                       "Draw the picture for these settings: (image, its PNG at the generator's size, status).",
                       state=True),
              [*base, *widgets, edit], shown, api_name="render", trigger_mode="always_last", show_progress="hidden")
        dice.click(endpoint(cb.random_seed, [], "A random seed for the seed box."), None, seed,
                   api_name="random_seed")
        reset.click(endpoint(cb.reset_controls, [], "Every direction control's starting value."), None, widgets,
                    api_name="reset_controls")
        if images:
            walk.click(endpoint(cb.interpolate, [*base_names, "to_seed", "frames", "slerp", *controls],
                                "Frames from one seed's sample to another's, lerp or slerp: (strip, status)."),
                       [*base, to_seed, frames, slerp, *widgets], [strip, strip_note], api_name="interpolate")
        if engine.classifier is not None:
            more.click(endpoint(cb.more_of, [*base_names, "target", "steps", *controls],
                                "Classifier-gradient steps towards a class: (image, PNG, status, probabilities, "
                                "before, after).", state=True),
                       [*base, target, steps, *widgets, edit], [*shown, edit, edit_note, before, after],
                       api_name="more_of")
            forget.click(endpoint(cb.reset_edit, [*base_names, *controls],
                                  "Undo the classifier edits of this session: (image, PNG, status, message, "
                                  "before, after)."),
                         [*base, *widgets], [*shown, edit, edit_note, before, after], api_name="reset_edit")
    blocks.validate_inputs = _exact_inputs(blocks)  # type: ignore[method-assign]
    return blocks


def _exact_inputs(blocks: gr.Blocks) -> Callable[[Any, list[Any]], None]:
    """Gradio's check of an event's values, made exact: a call with more values than the endpoint's inputs (Gradio
    drops them, or takes one extra for the session's state) or fewer is refused in one line."""

    def validate_inputs(block_fn: Any, inputs: list[Any]) -> None:
        stateful = [i for i, b in enumerate(block_fn.inputs) if getattr(b, "stateful", False)]
        if len(inputs) == len(block_fn.inputs) and all(inputs[i] is None for i in stateful):
            return  # the endpoint's values, and Gradio's empty slots for the session's state
        named = len(block_fn.inputs) - len(stateful)
        raise refused(str(block_fn.api_name), f"/{block_fn.api_name} takes {named} values, got {len(inputs)}")

    return validate_inputs


def theme() -> gr.themes.Base:
    """Gradio's default look with system fonts only: the page never asks another host for anything."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Default(font=system, font_mono=["ui-monospace", "monospace"])


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def alt_text_script(texts: dict[str, str]) -> str:
    """A script for the page's head that gives each picture its alt text (elem_id -> text; Gradio's images have
    none) whenever it appears or changes."""
    return ("<script>(() => { const alt = " + json.dumps(texts).replace("<", "\\u003c") + ";\n"
            "const apply = () => { for (const [id, text] of Object.entries(alt)) "
            "for (const img of document.querySelectorAll('#' + id + ' img')) if (img.alt !== text) img.alt = text; };"
            "\nnew MutationObserver(apply).observe(document.documentElement, {subtree: true, childList: true, "
            "attributes: true, attributeFilter: ['src']}); })();</script>")


def alt_texts(blocks: gr.Blocks) -> dict[str, str]:
    """The alt text of every picture on the page: its label, or what it shows."""
    texts = {"picture": "the generated picture for the current settings", "strip": "the interpolation strip",
             "before": "the sample before the classifier's nudges", "after": "the sample after them",
             "run-curves": "the run's curves: losses, penalty, learning rates, it/s, tracked metrics"}
    for block in blocks.blocks.values():
        elem_id = getattr(block, "elem_id", None) or ""
        if elem_id.startswith("preview-"):
            texts[elem_id] = f"what {getattr(block, 'label', '')}"
    return texts


class KnownEndpoints:
    """ASGI middleware: a call to an endpoint the page does not have is a 404 naming it (Gradio answers 500 and
    logs a traceback)."""

    CALL = re.compile(r".*/gradio_api/call/(?:v2/)?([^/]+)/?")

    def __init__(self, app: Any, names: set[str]) -> None:
        self.app, self.names = app, names

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        match = self.CALL.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        if match and scope.get("method") == "POST" and match.group(1) not in self.names:
            from fastapi.responses import JSONResponse

            answer = JSONResponse({"detail": f"no endpoint /{match.group(1)[:40]}"}, status_code=404)
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


def launch(blocks: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> Any:
    """Serve the page on host:port only (no share link, no analytics, no file access beyond Gradio's cache; an
    unknown endpoint is a 404). Blocking, SIGTERM stops it as Ctrl-C does (the server closes and the demo's
    temporary files are removed)."""
    from starlette.middleware import Middleware

    if block and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        served = blocks.queue(default_concurrency_limit=1).launch(
            server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=True,
            allowed_paths=[], max_file_size=0, enable_monitoring=False, ssr_mode=False, mcp_server=False,
            pwa=False, show_error=False, quiet=True, theme=theme(), footer_links=["api"],
            head=f"<style>{CSS}</style>" + alt_text_script(alt_texts(blocks)),  # in the head: not scoped by Gradio
            app_kwargs={"middleware": [Middleware(KnownEndpoints,  # type: ignore[arg-type]
                                                  names={f.api_name for f in blocks.fns.values() if f.api_name})]},
        )
    except OSError as e:
        reason = str(e).split(". ")[0]  # Gradio's advice about its own environment variables does not apply here
        raise ConfigError(f"cannot serve on {host}:{port} ({reason})", "choose another --port (or --host)") from None
    print(f"Running on local URL:  {blocks.local_url}", flush=True)
    if block:
        blocks.block_thread()
    return served
