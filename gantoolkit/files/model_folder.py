"""`gantool export --format folder`: a model folder in the layout model hubs use, which `load_generator` reads back.

- `model.safetensors`: the generator's weights (EMA by default) as a gantoolkit generator-only checkpoint, whose
  header also holds the run configuration, so `gantoolkit.load_generator(FOLDER)` rebuilds it;
- `config.json`: everything needed to rebuild it without reading that header: the components with every option
  resolved, the plugin distributions and versions that registered them, the data description, and the generator's
  inputs and output;
- `README.md`: a model card (data, steps, components, the latest `gantool evaluate` report's metrics, the sample
  grid, how to load it);
- `samples.png`: seed 0's samples (images, or 2-D points drawn as a scatter), when they can be drawn.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from gantoolkit import __version__
from gantoolkit.files.checkpoint import FORMAT, FORMAT_VERSION, GENERATOR_ONLY, encode_metadata, prefixed
from gantoolkit.files.export import input_names
from gantoolkit.files.images import png_bytes, preview
from gantoolkit.files.outputs import MODEL_FOLDER_FORMAT
from gantoolkit.files.runs import CHECKPOINTS
from gantoolkit.sampling.generator import LoadedGenerator

FOLDER_FORMAT_VERSION = 1
#: samples in the card's grid (one column per class for conditional models)
GRID_SAMPLES = 64
_KEPT = ("config", "data", "components", "step", "gantoolkit_version", "created", "torch_version")


def folder_files(model: LoadedGenerator, source: Path, ema: bool) -> dict[str, bytes]:
    """The files of the model folder of `model` (loaded from checkpoint `source` with `ema`), name -> bytes."""
    ckpt = model.checkpoint
    meta = {k: v for k, v in ckpt.meta.items() if k in _KEPT}
    meta.update(kind=GENERATOR_ONLY, exported_from=str(source))
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), **encode_metadata(meta)}
    files = {"model.safetensors": save(prefixed("generator", model.generator.state_dict()), metadata=header)}
    evaluation = latest_metrics(source)
    config = folder_config(model, source, ema and bool(ckpt.section("ema.module")), evaluation)
    files["config.json"] = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()
    grid = sample_grid(model)
    if grid is not None:
        files["samples.png"] = grid
    files["README.md"] = model_card(model, config, evaluation, grid is not None).encode()
    return files


def folder_config(model: LoadedGenerator, source: Path, ema: bool,
                  evaluation: tuple[str, dict[str, float]] | None) -> dict[str, Any]:
    data, config = model.data, model.models.config  # the built models' config: every option resolved
    return {
        "format": MODEL_FOLDER_FORMAT, "format_version": FOLDER_FORMAT_VERSION,
        "gantoolkit_version": __version__, "torch_version": torch.__version__,
        "weights": "ema" if ema else "generator", "step": model.checkpoint.step,
        "config": config.to_json(), "components": model.checkpoint.components, "data": data.to_json(),
        "generator": {
            "inputs": input_names(model), "latent_dim": model.latent_dim,
            "latent_distribution": "N(0, I)", "code_dim": int(model.generator.code_dim or 0),
            "num_classes": data.num_classes if model.conditional else 0,
            "classes": list(model.class_names) if model.conditional else [],
            "output_shape": list(data.shape), "value_range": [-1, 1] if data.is_image else None,
        },
        "exported_from": str(source),
        "evaluation": {"report": evaluation[0], "metrics": evaluation[1]} if evaluation else None,
    }


def run_of(source: Path) -> Path | None:
    """The run directory a checkpoint belongs to (None for a file outside one)."""
    parent = Path(source).parent
    return parent.parent if parent.name == CHECKPOINTS else None


def latest_metrics(source: Path) -> tuple[str, dict[str, float]] | None:
    """(report name, metric -> value) of the newest `gantool evaluate` report in the checkpoint's run."""
    from gantoolkit.report import newest_evaluation

    run = run_of(source)
    found = newest_evaluation(run) if run is not None else None
    if found is None:
        return None
    path, report = found
    metrics = {k: float(v) for k, v in report.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    return path.name, metrics


def sample_grid(model: LoadedGenerator) -> bytes | None:
    samples, _ = model.sample(GRID_SAMPLES, seed=0)
    cols = model.data.num_classes if model.conditional else None
    picture = preview(samples, model.data, cols)
    return png_bytes(picture) if picture is not None else None


def model_card(model: LoadedGenerator, config: dict[str, Any], evaluation: tuple[str, dict[str, float]] | None,
               has_grid: bool) -> str:
    data, run = model.data, model.models.config
    gen = config["generator"]
    parts = [run.arch, run.loss, run.cond, *run.controllers]
    tags = ["gan", "gantoolkit", *(p.name for p in parts)]
    shape = "×".join(map(str, data.shape))
    more = ", …" if data.num_classes > 10 else ""
    classes = f"{data.num_classes} classes ({', '.join(model.class_names[:10])}{more})"
    lines = [
        "---", "library_name: gantoolkit", "tags:", *(f"- {t}" for t in tags), "---", "",
        f"# {run.arch.name} + {run.loss.name} + {run.cond.name} on {data.source}", "",
        f"A generator trained with gantoolkit {config['gantoolkit_version']} for {model.checkpoint.step} of "
        f"{run.steps} steps on `{data.source}` ({data.modality} {shape}; "
        f"{classes if model.conditional else 'unconditional'}). Weights: "
        f"{'the EMA generator' if config['weights'] == 'ema' else 'the generator (no EMA)'}.", "",
        "| part | name | options |", "|---|---|---|",
    ]
    for kind, choice in (("architecture", run.arch), ("loss", run.loss), ("conditioning", run.cond),
                         *(("controller", c) for c in run.controllers)):
        options = ", ".join(f"{k}={v}" for k, v in sorted(choice.options.items())) or "—"
        lines.append(f"| {kind} | `{choice.name}` | {options} |")
    lines += ["", f"Input: z of size {gen['latent_dim']} from N(0, I)"
              + (", a class label" if model.conditional else "")
              + (f", {gen['code_dim']} controller code entries" if gen["code_dim"] else "")
              + (f"; output: images {shape} in [-1, 1]." if data.is_image else f"; output: vectors of {shape}."), ""]
    lines += ["## Samples", ""]
    lines += (["![seed 0's samples](samples.png)", ""] if has_grid else ["These samples cannot be drawn.", ""])
    lines += ["## Measured", ""]
    if evaluation is None:
        lines += ["No `gantool evaluate` report was found in the run when this folder was exported.", ""]
    else:
        name, metrics = evaluation
        lines += [f"From the run's newest evaluation report, `{name}`:", "", "| metric | value |", "|---|---|",
                  *(f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())), ""]
    lines += ["## Use", "", "```python", "import gantoolkit", "",
              'G = gantoolkit.load_generator("path/to/this/folder")',
              "images = G.sample(16, seed=0)  # uint8 N×C×H×W" if data.is_image else
              "points = G.sample(500, seed=0)  # float32 N×D", "```", "",
              "or `gantool sample path/to/this/folder --n 64 --out grid.png`. `config.json` describes the "
              "components (every option), the plugins that provide them and the data; `model.safetensors` holds "
              "the weights.", ""]
    return "\n".join(lines)
