"""Built-in named presets (`gantool train --config NAME`; flags given beside it override it)."""

from __future__ import annotations

from gantoolkit import hookimpl


def toy_recipe(data: str, steps: int) -> dict:
    """The mode-collapse recipe shared by toy-ring and toy-grid (they differ in data and length only)."""
    return {
        "data": data, "steps": steps,
        "arch": {"name": "pac", "base": "mlp", "pack": 2, "hidden_dim": 64, "g_depth": 3, "d_depth": 3},
        "loss": {"name": "bce", "r1": 0.1}, "cond": "none", "g_batch": "fresh", "latent_dim": 8, "batch_size": 256,
        "ema": 0.999, "lr_decay": 0.5,
        "track": ["modes", "hq", "rkl"], "track_every": 1000, "log_every": 1000, "sample_every": 5000,
        "checkpoint_every": 10000,
    }


#: where the quickdraw preset reads its categories (under the default --data-root, ./data), fetched by --download
QUICKDRAW_FOLDER = "data/quickdraw"


def quickdraw_recipe(categories: tuple[str, ...], per_class: int) -> dict:
    """The lecture's conditional GAN on a handful of doodle categories: dcgan of width 32 at 32x32, BCE with R1, EMA
    and decayed rates (the schedule the digits measured best for bce; not tuned on the doodles)."""
    return {
        "data": {"name": f"quickdraw:{QUICKDRAW_FOLDER}", "categories": list(categories), "per_class": per_class},
        "arch": {"name": "dcgan", "ngf": 32, "ndf": 32}, "loss": {"name": "bce", "r1": 1.0}, "cond": "onehot",
        "image_size": 32, "steps": 3000, "ema": 0.99, "lr_decay": 0.5,
    }


PRESETS: dict[str, tuple[str, dict]] = {
    "default": (
        "the README's first run: conditional DCGAN with the gradient-penalty W-loss on the embedded digits "
        "(what `gantool train` trains when no part is named)",
        {"data": "digits", "arch": "dcgan", "loss": "wgan-gp", "cond": "onehot"},
    ),
    "digits-conditional": (
        "conditional DCGAN on the embedded digits: BCE, one-hot labels, the digits' recommended schedule",
        {"data": "digits", "arch": "dcgan", "loss": "bce", "cond": "onehot"},
    ),
    "digits-wgan-gp": (
        "conditional DCGAN critic with gradient penalty on the embedded digits (the same as `default`)",
        {"data": "digits", "arch": "dcgan", "loss": "wgan-gp", "cond": "onehot"},
    ),
    "digits-modern": (
        "the modern recipe on the embedded digits: R3GAN's relativistic pairing loss with R1 and R2 penalties (0.1, "
        "every 4th critic step), an AC-GAN auxiliary classifier for the labels, EMA 0.99, rates decayed over the "
        "second half of 2,000 steps (benchmarks/digits.py --recipes)",
        {"data": "digits", "arch": "dcgan", "loss": {"name": "rpgan", "r1": 0.1, "r2": 0.1, "lazy_every": 4},
         "cond": "acgan", "ema": 0.99, "lr_decay": 0.5, "steps": 2000},
    ),
    "stacked-digits-modern": (
        "the modern recipe on stacked digits (StackedMNIST's mode-collapse protocol, 1,000 modes), unconditional as "
        "the protocol is: R3GAN's relativistic pairing loss with R1 and R2 (0.1, every 4th critic step), EMA 0.99, "
        "rates decayed over the second half of 2,000 steps (benchmarks/stacked_digits.py)",
        {"data": {"name": "stacked-digits", "labels": False}, "arch": {"name": "dcgan", "ngf": 32, "ndf": 32},
         "loss": {"name": "rpgan", "r1": 0.1, "r2": 0.1, "lazy_every": 4}, "cond": "none", "ema": 0.99,
         "lr_decay": 0.5, "steps": 2000},
    ),
    "quickdraw-doodles": (
        "conditional DCGAN on five Quick, Draw! categories (apple, cat, fish, house, tree; the first 5,000 drawings "
        "of each) read from data/quickdraw/, at 32x32: BCE with an R1 penalty, one-hot labels, the digits' BCE "
        "schedule; the first run fetches the files with --download",
        quickdraw_recipe(("apple", "cat", "fish", "house", "tree"), 5000),
    ),
    "toy-ring": (
        "mode-collapse recipe for toy:ring: PacGAN packing (2) of an MLP critic, BCE with an R1 penalty, EMA, learning "
        "rates decayed to zero over the second half of 40,000 steps; sample with `--sampler refine`",
        toy_recipe("toy:ring", 40000),
    ),
    "toy-grid": (
        "mode-collapse recipe for toy:grid: the ring's recipe (PacGAN packing 2, BCE with an R1 penalty, EMA, decayed "
        "learning rates, 40,000 steps); sample with `--sampler refine`",
        toy_recipe("toy:grid", 40000),
    ),
}


@hookimpl
def register_configs(register):
    for name, (summary, values) in PRESETS.items():
        register(name, values, summary=summary)
