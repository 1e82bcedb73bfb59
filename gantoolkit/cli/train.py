"""`gantool train`: compose components by name and train, or resume a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gantoolkit.cli.common import complete, err_console
from gantoolkit.config import RunConfig, read_toml
from gantoolkit.errors import ConfigError
from gantoolkit.options import inline_options

COMPONENTS = "Components"
DATA = "Data"
SCHEDULE = "Schedule"
OPTIM = "Optimisation"
OUTPUT = "Run directory"
PROCESSES = "Several processes (torch.distributed)"
#: the preset `gantool train` runs when no part is named (a plugin cannot replace a built-in name)
DEFAULT_PRESET = "default"
#: the flags passed to torch.distributed.run rather than to the workers
LAUNCH = ("nproc_per_node", "nnodes", "node_rank", "rdzv_backend", "rdzv_endpoint", "rdzv_id")

EPILOG = (
    "Examples:\n\n"
    "  gantool train --arch dcgan --loss wgan-gp --cond onehot\n\n"
    "  gantool train --config digits-conditional --steps 3000 --out runs/digits\n\n"
    "  gantool train --data folder:~/faces --image-size 64 --loss-opt label_smoothing=0.1\n\n"
    "  gantool train --resume runs/digits --steps 6000\n\n"
    "  gantool train --data folder:~/few-faces --image-size 64 --augment diffaug:policy=color,translation\n\n"
    "  gantool train --nproc-per-node 4 --batch-size 256 --amp --compile   (4 GPUs; or: torchrun ... -m gantoolkit "
    "train ...)\n\n"
    "Flags override --config; each component's options are set with --<kind>-opt KEY=VALUE "
    "(see `gantool list KIND --options`)."
)


def config_layer(source: str) -> tuple[dict[str, Any], str]:
    """A preset by name, or a TOML file by path."""
    path = Path(source).expanduser()
    if path.suffix == ".toml" or path.exists():
        return read_toml(path), f"config file {source}"
    from gantoolkit.registry import get_registry

    spec, _ = get_registry().get("config", source)
    if not isinstance(spec.factory, dict):
        raise ConfigError(f"config {source!r} from plugin {spec.plugin!r} is not a table of settings")
    return dict(spec.factory), f"config {source!r}"


def register(app: typer.Typer) -> None:
    @app.command(epilog=EPILOG, rich_help_panel="Training")
    def train(
        arch: Annotated[Optional[str], typer.Option(help="Architecture (default dcgan).", autocompletion=complete("architecture"), rich_help_panel=COMPONENTS)] = None,
        loss: Annotated[Optional[str], typer.Option(help="Loss (default bce).", autocompletion=complete("loss"), rich_help_panel=COMPONENTS)] = None,
        cond: Annotated[Optional[str], typer.Option(help="Conditioning (default none).", autocompletion=complete("conditioning"), rich_help_panel=COMPONENTS)] = None,
        controller: Annotated[Optional[list[str]], typer.Option(help="Training controller (repeatable), e.g. infogan.", autocompletion=complete("controller"), rich_help_panel=COMPONENTS)] = None,
        arch_opt: Annotated[Optional[list[str]], typer.Option(metavar="KEY=VALUE", help="Architecture option (repeatable).", rich_help_panel=COMPONENTS)] = None,
        loss_opt: Annotated[Optional[list[str]], typer.Option(metavar="KEY=VALUE", help="Loss option (repeatable).", rich_help_panel=COMPONENTS)] = None,
        cond_opt: Annotated[Optional[list[str]], typer.Option(metavar="KEY=VALUE", help="Conditioning option (repeatable).", rich_help_panel=COMPONENTS)] = None,
        controller_opt: Annotated[Optional[list[str]], typer.Option(metavar="[NAME.]KEY=VALUE", help="Controller option (repeatable).", rich_help_panel=COMPONENTS)] = None,
        augment: Annotated[Optional[str], typer.Option(metavar="NAME[:KEY=VALUE,...]", help="Augment what the critic sees, real and fake batches alike, for small data: diffaug or ada (images only; gantool list augmentations).", autocompletion=complete("augmentation"), rich_help_panel=COMPONENTS)] = None,
        augment_opt: Annotated[Optional[list[str]], typer.Option(metavar="KEY=VALUE", help="Augmentation option (repeatable), e.g. policy=color,translation.", rich_help_panel=COMPONENTS)] = None,
        config: Annotated[Optional[str], typer.Option("--config", "-c", help="Named preset (gantool list configs) or a TOML file.", autocompletion=complete("config"), rich_help_panel=COMPONENTS)] = None,
        data: Annotated[Optional[str], typer.Option(help="Dataset: digits (default), folder:PATH, mnist, toy:ring, ...; with --resume, where the run's folder is now (folder:PATH).", autocompletion=complete("dataset"), rich_help_panel=DATA)] = None,
        data_opt: Annotated[Optional[list[str]], typer.Option(metavar="KEY=VALUE", help="Dataset option (repeatable).", rich_help_panel=DATA)] = None,
        image_size: Annotated[Optional[str], typer.Option(metavar="SIDE|HxW", help="Resize images to this side, or to H high and W wide, e.g. 64x32 (default: the dataset's).", rich_help_panel=DATA)] = None,
        data_root: Annotated[Optional[str], typer.Option(help="Where downloadable datasets live (default ./data).", rich_help_panel=DATA)] = None,
        download: Annotated[Optional[bool], typer.Option("--download/--no-download", help="Allow downloading datasets (off by default).", rich_help_panel=DATA)] = None,
        on_bad_image: Annotated[Optional[str], typer.Option(help="Unreadable image in a folder: error (default) or skip.", rich_help_panel=DATA)] = None,
        workers: Annotated[Optional[int], typer.Option(help="DataLoader worker processes reading a streamed dataset (default min(4, CPUs); 0: read in the training process).", rich_help_panel=DATA)] = None,
        steps: Annotated[Optional[int], typer.Option(help="Generator steps in total (default 1000).", rich_help_panel=SCHEDULE)] = None,
        batch_size: Annotated[Optional[int], typer.Option(help="Batch size (default 64).", rich_help_panel=SCHEDULE)] = None,
        n_critic: Annotated[Optional[int], typer.Option(help="Critic steps per generator step (default: the loss's).", rich_help_panel=SCHEDULE)] = None,
        latent_dim: Annotated[Optional[int], typer.Option(help="Size of z (default 100).", rich_help_panel=SCHEDULE)] = None,
        seed: Annotated[Optional[int], typer.Option(help="Random seed (default 0): same seed, same weights.", rich_help_panel=SCHEDULE)] = None,
        device: Annotated[Optional[str], typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps.", rich_help_panel=SCHEDULE)] = None,
        threads: Annotated[Optional[int], typer.Option(help="CPU threads of this process (default: see the README's \"A busy laptop\").", rich_help_panel=SCHEDULE)] = None,
        amp: Annotated[Optional[bool], typer.Option("--amp/--no-amp", help="Mixed precision: bf16 (fp16 with loss scaling on GPUs without bf16); default on with CUDA, off on the CPU.", rich_help_panel=SCHEDULE)] = None,
        compile: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the generator and critic (pays off on GPUs; the first steps wait for the compiler).", rich_help_panel=SCHEDULE)] = None,
        on_nan: Annotated[Optional[str], typer.Option(metavar="stop|rollback", help="A NaN or infinite loss: stop (default; the last good checkpoint is kept) or rollback (restore the last good state, halve the learning rates, skip the bad batches, go on).", rich_help_panel=SCHEDULE)] = None,
        g_batch: Annotated[Optional[str], typer.Option(metavar="fresh|reuse", help="The generator step's batch: fresh noise (default, the course's algorithm) or the last critic step's fakes (reuse: one generator pass fewer, as pytorch/examples' DCGAN).", rich_help_panel=SCHEDULE)] = None,
        optimizer: Annotated[Optional[str], typer.Option(help="adam, adamw, rmsprop or sgd (default: the loss's).", rich_help_panel=OPTIM)] = None,
        lr: Annotated[Optional[float], typer.Option(help="Learning rate of both networks (default: the loss's).", rich_help_panel=OPTIM)] = None,
        lr_g: Annotated[Optional[float], typer.Option(help="Generator learning rate.", rich_help_panel=OPTIM)] = None,
        lr_d: Annotated[Optional[float], typer.Option(help="Critic learning rate.", rich_help_panel=OPTIM)] = None,
        betas: Annotated[Optional[str], typer.Option(metavar="B1,B2", help="Adam betas (default: the loss's).", rich_help_panel=OPTIM)] = None,
        ema: Annotated[Optional[float], typer.Option(help="EMA decay of the generator, e.g. 0.999 (0: off).", rich_help_panel=OPTIM)] = None,
        lr_decay: Annotated[Optional[float], typer.Option(help="Share of the run, at its end, over which both learning rates fall linearly to zero, e.g. 0.5 (0: constant).", rich_help_panel=OPTIM)] = None,
        out: Annotated[Optional[Path], typer.Option("--out", "-o", help="New run directory (default runs/DATA-ARCH-LOSS-COND[-N]).", rich_help_panel=OUTPUT)] = None,
        resume: Annotated[Optional[Path], typer.Option(help="Continue this run directory to --steps.", rich_help_panel=OUTPUT)] = None,
        sample_every: Annotated[Optional[int], typer.Option(help="Sample grid every N steps (default 500).", rich_help_panel=OUTPUT)] = None,
        checkpoint_every: Annotated[Optional[int], typer.Option(help="Checkpoint every N steps (default 500).", rich_help_panel=OUTPUT)] = None,
        log_every: Annotated[Optional[int], typer.Option(help="Log losses every N steps (default 50).", rich_help_panel=OUTPUT)] = None,
        keep_checkpoints: Annotated[Optional[int], typer.Option(help="Checkpoints kept (default 3).", rich_help_panel=OUTPUT)] = None,
        track: Annotated[Optional[str], typer.Option(metavar="METRICS", help="Metrics to log while training, e.g. modes,hq,rkl (toy data) or classes,class_kl.", rich_help_panel=OUTPUT)] = None,
        track_every: Annotated[Optional[int], typer.Option(help="Compute the --track metrics every N steps (default 500).", rich_help_panel=OUTPUT)] = None,
        track_n: Annotated[Optional[int], typer.Option(help="Samples per --track measurement (default 2500).", rich_help_panel=OUTPUT)] = None,
        logger: Annotated[Optional[str], typer.Option(metavar="NAME[,NAME]", help="Also log to these loggers, e.g. tensorboard (RUN/tb/; gantool list loggers). metrics.jsonl is always written.", autocompletion=complete("logger"), rich_help_panel=OUTPUT)] = None,
        nproc_per_node: Annotated[Optional[int], typer.Option(help="Train on N processes on this node (one per GPU, or CPU processes with gloo), launched by torch.distributed.run; --batch-size is split among them.", rich_help_panel=PROCESSES)] = None,
        nnodes: Annotated[Optional[str], typer.Option(help="Number of nodes (or MIN:MAX), for torchrun's rendezvous.", rich_help_panel=PROCESSES)] = None,
        node_rank: Annotated[Optional[int], typer.Option(help="This node's rank (static rendezvous only).", rich_help_panel=PROCESSES)] = None,
        rdzv_backend: Annotated[Optional[str], typer.Option(help="torchrun rendezvous backend (default c10d with --rdzv-endpoint).", rich_help_panel=PROCESSES)] = None,
        rdzv_endpoint: Annotated[Optional[str], typer.Option(metavar="HOST:PORT", help="Rendezvous endpoint shared by all nodes.", rich_help_panel=PROCESSES)] = None,
        rdzv_id: Annotated[Optional[str], typer.Option(help="Job id shared by all nodes of one run.", rich_help_panel=PROCESSES)] = None,
    ) -> None:
        """Train a GAN; every part is looked up by name in the plugin registry."""
        arguments = dict(locals())  # every flag as given, for the workers of --nproc-per-node
        flags = {
            "arch": arch, "loss": loss, "cond": cond, "data": data, "image_size": image_size,
            "data_root": data_root, "download": download, "on_bad_image": on_bad_image, "steps": steps,
            "batch_size": batch_size, "n_critic": n_critic, "latent_dim": latent_dim, "seed": seed,
            "device": device, "threads": threads, "amp": amp, "on_nan": on_nan, "g_batch": g_batch, "optimizer": optimizer, "lr": lr, "lr_g": lr_g, "lr_d": lr_d,
            "betas": betas, "ema": ema, "lr_decay": lr_decay, "sample_every": sample_every, "checkpoint_every": checkpoint_every,
            "log_every": log_every, "keep_checkpoints": keep_checkpoints, "track": track, "track_every": track_every,
            "track_n": track_n, "compile": compile, "loggers": logger,
            "workers": workers,
        }
        given: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
        if controller:
            given["controllers"] = list(controller)
        inline: list[str] = []
        if augment is not None:
            given["augment"], inline = inline_options(augment, "--augment")
        opts = {"arch": arch_opt or [], "loss": loss_opt or [], "cond": cond_opt or [], "data": data_opt or [],
                "controller": controller_opt or [], "augment": [*inline, *(augment_opt or [])]}
        console = err_console()
        if nproc_per_node is None and any(arguments[k] is not None for k in LAUNCH):
            raise ConfigError("--nnodes, --node-rank and --rdzv-* need --nproc-per-node")
        if resume is not None:
            if out is not None:
                raise ConfigError("--out and --resume cannot be used together", "a resumed run stays in its directory")
            if config is not None or any(opts.values()):
                raise ConfigError("--config and --*-opt cannot change when resuming (the checkpoint fixes them)")
            if nproc_per_node is not None:
                return launch_workers(arguments)
            from gantoolkit.training.run import resume as resume_run

            run_dir = resume_run(resume, given, console)
        else:
            cfg, notes = new_run_config(config, given, opts)
            if nproc_per_node is not None:
                return launch_workers(arguments, cfg)
            from gantoolkit.training.run import train as train_run

            run_dir = train_run(cfg, out, console, notes)
        from gantoolkit.training.distributed import is_main_process

        if is_main_process():
            typer.echo(f"run: {run_dir}")


def new_run_config(config: str | None, given: dict[str, Any],
                   opts: dict[str, list[str]]) -> tuple[RunConfig, list[str]]:
    """Defaults < the data's recommendation < --config < flags, and the lines that say where settings came from.
    With no part named at all (no --config, --arch, --loss, --cond, --data or --controller), the `default` preset:
    the README's first run."""
    from gantoolkit.recommend import compose

    layers, notes = [], []
    if config is None and not any(k in given for k in ("arch", "loss", "cond", "data", "controllers")):
        config = DEFAULT_PRESET
        notes.append(f"no --config or part named: the {DEFAULT_PRESET!r} preset, {preset_summary(DEFAULT_PRESET)}")
    if config is not None:
        layers.append(config_layer(config))
    layers.append((given, "command line"))
    cfg, advice = compose(layers, opts)
    if advice:
        settings = ", ".join(f"{k} {v}" for k, v in advice.items())
        notes.append(f"{cfg.data.name} recommends for {cfg.arch.name} + {cfg.loss.name}: {settings} (flags override)")
    return cfg, notes


def preset_summary(name: str) -> str:
    from gantoolkit.registry import get_registry

    return get_registry().get("config", name)[0].summary


def launch_workers(arguments: dict[str, Any], config: RunConfig | None = None) -> None:
    """`--nproc-per-node N`: this same `gantool train` (minus the launch flags) on every worker, through
    torch.distributed.run; rank 0 prints and writes the run. A new run's configuration is checked here first, so
    that a mistake is reported once rather than by every worker."""
    from gantoolkit.training.distributed import Processes, check_config, launch, worker_arguments

    nproc, nnodes = arguments["nproc_per_node"], arguments["nnodes"] or "1"
    if config is not None:
        config.validate()
        if nproc >= 1 and nnodes.isdigit():
            check_config(Processes(world_size=nproc * int(nnodes)), config)
    launch({k: arguments[k] for k in LAUNCH}, ["train", *worker_arguments(arguments, skip=LAUNCH)])
