"""Starting and resuming runs: configuration -> data -> models -> trainer -> run directory."""

from __future__ import annotations

import contextlib
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from gantoolkit.config import RunConfig, apply_layer
from gantoolkit.data import DataInfo
from gantoolkit.data.loading import load_dataset, refuse_saved_path, saved_data_path
from gantoolkit.data.streaming import StreamBatches
from gantoolkit.device import resolve_device, set_threads
from gantoolkit.errors import CheckpointError, ConfigError, DataError, GanToolkitError, RunDirectoryError
from gantoolkit.files import runs
from gantoolkit.files.checkpoint import TRAINING, Checkpoint, build_error, load_checkpoint, missing_plugin_error
from gantoolkit.loggers import Loggers
from gantoolkit.models import GanModels, build_models
from gantoolkit.registry import Registry, get_registry
from gantoolkit.training import distributed
from gantoolkit.training.progress import Monitor
from gantoolkit.training.sizing import build_within_memory
from gantoolkit.training.trainer import Trainer, describe

#: settings that may change when a run is resumed (everything else is fixed by the checkpoint; `data` only says where
#: the run's own data is now, see `_resumed_data`)
RESUMABLE = {"steps", "device", "threads", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
             "data_root", "download", "on_nan", "compile", "lr", "lr_g", "lr_d", "loggers", "data",
             "workers"}
#: the learning-rate flags: on resume they replace the rates the checkpoint's optimizers had (saved from then on)
RATES = ("lr", "lr_g", "lr_d")


def default_run_name(config: RunConfig) -> str:
    parts = [config.data.name.split(":")[0], config.arch.name, config.loss.name, config.cond.name]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(parts))


def _announce(console: Console, run_dir: Path, trainer: Trainer, start: int, total: int,
              notes: list[str] | None = None, loggers: Loggers | None = None) -> None:
    info = describe(trainer)
    cfg = trainer.cfg
    augmented = f" (augment {cfg.augment.name})" if cfg.augment.name != "none" else ""
    for note in notes or []:
        console.print(note, highlight=False)
    console.print(
        f"[bold]gantool train[/] {cfg.arch.name} + {cfg.loss.name} + {cfg.cond.name}{augmented} on {cfg.data.name} "
        f"{tuple(trainer.info.shape)}  steps {start}->{total}  batch {cfg.batch_size}  device {info['device']}\n"
        f"  {info['optimizer']} lr_g {info['lr_g']:g} lr_d {info['lr_d']:g} betas {info['betas']}  "
        f"n_critic {info['n_critic']}  amp {info['amp']}  params G {info['params_g']:,} D {info['params_d']:,}\n"
        f"{_by_resolution(trainer)}  run directory: {run_dir}",
        highlight=False,
    )
    run = shlex.quote(str(run_dir))
    watch = [*(loggers.commands(run_dir) if loggers else []), f"gantool plot {run} --out curves.png"]
    console.print("  watch: " + "   ".join(watch), highlight=False, markup=False)


def _by_resolution(trainer: Trainer) -> str:
    """The banner's line of parameters per resolution, when the architecture's bodies report them
    (`parameters_by_resolution()`, e.g. r3gan's), else nothing."""
    parts = []
    for name, body in (("G", trainer.models.generator.body), ("D", trainer.models.critic.body)):
        report = getattr(body, "parameters_by_resolution", None)
        if callable(report):
            parts.append(f"{name} " + " · ".join(f"{side} {count:,}" for side, count in report().items()))
    return f"  params by resolution: {'   '.join(parts)}\n" if parts else ""


def _loggers(processes: distributed.Processes, config: RunConfig) -> Loggers:
    """The `--logger`s of rank 0, built before the run is written (a missing package is refused first)."""
    return Loggers.create(config.loggers if processes.is_main else ())


def _attach(monitor: Monitor, loggers: Loggers, run_dir: Path, trainer: Trainer, step: int) -> Monitor:
    """Start the loggers on the run's configuration and hand them the records the monitor writes."""
    loggers.warn = monitor.loggers.warn  # their failures are printed where the progress is
    loggers.start(run_dir, {**trainer.cfg.to_json(), "components": trainer.models.provenance}, step)
    monitor.loggers = loggers
    return monitor


def train(config: RunConfig, out: Path | None = None, console: Console | None = None,
          notes: list[str] | None = None) -> Path:
    """Train a new run; returns its directory. Nothing is created until the configuration has been checked. `notes`
    (where settings came from) are printed with the banner."""
    console = console or Console(stderr=True)
    config.validate()
    registry = get_registry()
    processes, device, console = _setup(config, console)
    torch.manual_seed(config.seed)
    dataset = processes.main_first(lambda: load_dataset(config, registry))  # one download, one decode
    models = _build_models(config, dataset.info, registry)
    run_dir = processes.run_on_main(lambda: runs.choose_run_dir(out, default_run_name(config)))
    trainer = Trainer(models, dataset, run_dir, device, processes)  # the last checks: nothing made yet
    loggers = _loggers(processes, config)
    processes.run_on_main(lambda: runs.make_run_dir(run_dir))
    return _fit(trainer, console, loggers, 0,
                [*(notes or []), *_batch_note(trainer), *_stream_note(trainer), *_score_sign_note(trainer)])


def _setup(config: RunConfig, console: Console) -> tuple[distributed.Processes, torch.device, Console]:
    """This process's place among several (under torchrun), its device and threads; only rank 0 prints."""
    processes, device = distributed.setup(resolve_device(config.device))
    set_threads(config.threads)
    return processes, device, console if processes.is_main else Console(quiet=True)


def _build_models(config: RunConfig, info: DataInfo, registry: Registry) -> GanModels:
    """The run's models, with the provenance of every part (the data source's included) for its checkpoints."""
    models = build_within_memory(lambda: build_models(config, info, registry), config, registry,
                                 "use smaller widths (--arch-opt) or a smaller --latent-dim")
    models.provenance["data"] = registry.get("dataset", config.data.name)[0].provenance()
    return models


def _fit(trainer: Trainer, console: Console, loggers: Loggers, start: int, notes: list[str],
         prepare: Callable[[], None] | None = None) -> Path:
    """What a new and a resumed run share: under the run's lock, `prepare` (rank 0), the banner, training to the
    configured steps with the monitor and loggers, and the closing lines. Returns the run directory."""
    run_dir, processes, total = trainer.run_dir, trainer.procs, trainer.cfg.steps
    with _lock_on_main(processes, run_dir):  # before anything in the run is changed
        if prepare is not None and processes.is_main:
            prepare()
        _announce(console, run_dir, trainer, start, total, notes, loggers)
        started = time.perf_counter()
        with processes.errors_from_main(), contextlib.closing(trainer.batches):  # stops data workers
            monitor = distributed.monitor_for(processes, run_dir / runs.METRICS, total, start, console)
            last = trainer.fit(total, _attach(monitor, loggers, run_dir, trainer, start))
    _finish(console, run_dir, trainer, last, time.perf_counter() - started)
    return run_dir


def _batch_note(trainer: Trainer) -> list[str]:
    """A line when --batch-size asked for more examples than the data has (the banner and the run then say what is
    used: the whole data)."""
    asked, used = trainer.requested_batch_size, trainer.cfg.batch_size
    if asked == used:
        return []
    return [f"note: --batch-size {asked:,} is more than the {len(trainer.batches.data):,} examples of the data; each "
            f"batch is {used:,} (saved in the run as its batch size)"]


def _score_sign_note(trainer: Trainer) -> list[str]:
    """A line when the augmentation adapts from the sign of the critic's scores and the loss gives that sign no
    meaning (no `score_midpoint`: the W-losses, relativistic ones)."""
    augmentation, config = trainer.models.augment, trainer.cfg
    if augmentation is None or not augmentation.reads_score_sign or trainer.loss.score_midpoint is not None:
        return []
    return [f"note: augmentation {config.augment.name!r} adapts from the sign of the critic's real scores, which loss "
            f"{config.loss.name!r} leaves without meaning (only differences of its scores count); "
            f"{augmentation.score_sign_fix}"]


def _stream_note(trainer: Trainer) -> list[str]:
    """A line when the data is read from disk while training (larger than memory, or --data-opt stream=true)."""
    batches = trainer.batches
    return [batches.note()] if isinstance(batches, StreamBatches) else []


def resume(run_dir: Path, overrides: dict[str, Any], console: Console | None = None) -> Path:
    """Continue a run from its newest checkpoint to `steps` (the run's own total when not given)."""
    console = console or Console(stderr=True)
    run_dir = Path(run_dir)
    if not runs.is_run(run_dir):
        raise RunDirectoryError(
            f"{str(run_dir)!r} is not a run directory", "give the --out of an earlier gantool train"
        )
    fixed = sorted(k for k in overrides if k not in RESUMABLE)
    if fixed:
        flags = ", ".join("--" + k.replace("_", "-") for k in fixed)
        raise ConfigError(f"{flags} cannot change when resuming (the checkpoint fixes them)", "start a new run instead")
    ckpt = _newest_checkpoint(run_dir)
    if ckpt.kind != TRAINING:
        raise CheckpointError(f"{ckpt.path} holds a generator only and cannot be resumed",
                              "resume from a run directory written by gantool train")
    if "lr" in overrides:  # --lr sets both rates, also where the run was started with --lr-g or --lr-d
        overrides = {"lr_g": None, "lr_d": None, **overrides}
    registry = get_registry()
    try:
        registry.get("dataset", ckpt.config.data.name)
    except GanToolkitError as e:
        raise missing_plugin_error(ckpt, e) from None
    overrides = {**overrides, **_resumed_data(ckpt, overrides.get("data"), registry, run_dir)}
    if "keep_checkpoints" not in overrides:  # a file cannot make a run hold fewer checkpoints than it holds now
        held = len(runs.list_checkpoints(run_dir))
        overrides["keep_checkpoints"] = max(ckpt.config.keep_checkpoints, held, 1)
    config = apply_layer(ckpt.config, overrides, "resume").validate()
    if config.steps <= ckpt.step:
        raise ConfigError(
            f"the run is already at step {ckpt.step} of {config.steps}", f"pass --steps N with N > {ckpt.step}"
        )
    processes, device, console = _setup(config, console)
    dataset = processes.main_first(lambda: load_dataset(config, registry))  # one download, one decode
    if dataset.info.shape != ckpt.data.shape or dataset.info.num_classes != ckpt.data.num_classes:
        raise DataError(
            f"the data now reads as {dataset.info.shape} with {dataset.info.num_classes} classes, but the run was "
            f"trained on {ckpt.data.shape} with {ckpt.data.num_classes}",
            "resume with the same data",
        )
    try:
        models = _build_models(config, ckpt.data, registry)
    except GanToolkitError as e:
        raise build_error(ckpt, e) from None
    trainer = Trainer(models, dataset, run_dir, device, processes)
    trainer.load_state(ckpt)
    if any(k in overrides for k in RATES):  # after the checkpoint's optimizer states, which hold their own rates
        g = "lr" in overrides or "lr_g" in overrides
        d = "lr" in overrides or "lr_d" in overrides
        trainer.set_base_rates(trainer.plan.lr_g if g else None, trainer.plan.lr_d if d else None)

    def tidy() -> None:  # the log lines and temporary files of the steps after the checkpoint
        runs.MetricsLog(run_dir / runs.METRICS).truncate_after(ckpt.step)
        runs.remove_temporaries(run_dir)

    notes = [*_logger_note(ckpt, config, registry), *_stream_note(trainer), *_score_sign_note(trainer)]
    return _fit(trainer, console, _loggers(processes, config), ckpt.step, notes, tidy)


def _logger_note(ckpt: Checkpoint, config: RunConfig, registry: Registry) -> list[str]:
    """A line when the run was logged to loggers that this resume does not name (a checkpoint chooses no logger:
    one may send the run elsewhere). Only installed loggers' names are printed, never other text of the file."""
    saved = ckpt.json("config", {}).get("loggers")
    known = set(registry.names("logger"))
    missing = [n for n in saved if isinstance(n, str) and n in known and n not in config.loggers] \
        if isinstance(saved, list) else []
    if not missing:
        return []
    names = ",".join(dict.fromkeys(missing))
    return [f"note: the run was also logged with --logger {names}; a checkpoint does not choose loggers, so add "
            f"--logger {names} to go on logging there"]


def _resumed_data(ckpt: Checkpoint, given: str | None, registry: Registry, run_dir: Path) -> dict[str, Any]:
    """The `data` layer of a resume: none when the checkpoint's data names no path (digits, toy:ring: it is loaded as
    saved); a path it names is read only when `--data` gives it again, the same source (the folder may have moved;
    the shapes are checked after loading), its options kept."""
    saved = ckpt.config.data
    if given is None:
        run = shlex.quote(str(run_dir))
        refuse_saved_path(saved, registry, f"give the run's data again: gantool train --resume {run}")
        return {}
    spec, _ = registry.get("dataset", saved.name)
    named, _ = registry.get("dataset", given)
    if named.name != spec.name or (saved_data_path(saved, registry) is None and given != saved.name):
        usage = f"--data {spec.name}:{spec.argument}" if saved_data_path(saved, registry) else f"--data {saved.name}"
        raise ConfigError(f"--data {given} is not the data the run was trained on; a resumed run reads its own data "
                          f"(--data only says where it is now)", f"drop --data, or give {usage}")
    return {"data": {"name": given, **saved.options}}


def _finish(console: Console, run_dir: Path, trainer: Trainer, last: Path, seconds: float) -> None:
    """The end of a run: where its checkpoint and final grid are, and the next commands with its path filled in."""
    from gantoolkit.training.progress import format_duration

    console.print(f"done in {format_duration(seconds)}: {last}", highlight=False)
    final = runs.final_sample_path(run_dir)
    if final.exists():
        rows = "one row per class" if trainer.models.conditioning.requires_labels and trainer.info.is_image else ""
        console.print(f"samples: {final}" + (f" ({rows})" if rows else ""), highlight=False)
    console.print("next:\n" + "\n".join(f"  {line}" for line in next_commands(run_dir, trainer)), highlight=False)


def next_commands(run_dir: Path, trainer: Trainer) -> list[str]:
    """`gantool sample`, `evaluate`, `demo` and `report` for this run, ready to paste."""
    run = shlex.quote(str(run_dir))
    info = trainer.info
    if trainer.models.conditioning.requires_labels and info.num_classes:
        names = info.class_names or tuple(str(i) for i in range(info.num_classes))
        name = names[min(7, len(names) - 1)]
        sample = f"gantool sample {run} --n 100 --class {shlex.quote(name)} --out {_file_stem(name)}.png"
    else:
        out = "samples.png" if info.is_image or info.shape[0] == 2 else "samples.npz"
        sample = f"gantool sample {run} --n 64 --out {out}"
    report = shlex.quote(str(run_dir / "evaluation.json"))
    page = shlex.quote(str(run_dir / "report.html"))
    return [sample, f"gantool evaluate {run} --out {report}", f"gantool demo {run}",
            f"gantool report {run} --out {page}"]


def _file_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")
    return f"class-{stem or 'x'}"


def _newest_checkpoint(run_dir: Path) -> Checkpoint:
    """The run's newest checkpoint. A damaged one is refused (never skipped silently), with the way to resume from
    the one before it: `--resume` takes a run directory, so "use an earlier checkpoint" would not say how."""
    path = runs.resolve_checkpoint(run_dir)
    try:
        ckpt = load_checkpoint(path)
        bad = ckpt.non_finite()
        if bad is not None:  # written by a version that did not check, or edited: resuming would go on diverged
            raise CheckpointError(f"{str(path)!r} holds NaN or infinite values ({bad}); a diverged run is not resumed",
                                  "start a new run with a lower --lr")
        return ckpt
    except CheckpointError as e:
        earlier = runs.list_checkpoints(run_dir)[:-1]  # oldest first: the newest is `path`
        if not earlier:
            raise
        raise CheckpointError(e.message, f"move it out of {path.parent} to resume from step {earlier[-1][0]}") from None


def _lock_on_main(processes: distributed.Processes, run_dir: Path) -> contextlib.AbstractContextManager[None]:
    """The run's training lock, held by the process that writes the run (rank 0)."""
    return runs.training_lock(run_dir) if processes.is_main else contextlib.nullcontext()
