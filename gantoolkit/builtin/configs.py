"""Built-in named presets (`gantool train --config NAME`; flags given beside it override it)."""

from __future__ import annotations

from gantoolkit import hookimpl

PRESETS: dict[str, tuple[str, dict]] = {
    "digits-conditional": (
        "conditional DCGAN on the embedded digits: BCE, one-hot labels, 1,500 steps",
        {"data": "digits", "arch": "dcgan", "loss": "bce", "cond": "onehot", "steps": 1500},
    ),
    "digits-wgan-gp": (
        "the README's first run: conditional DCGAN critic with gradient penalty on the embedded digits",
        {"data": "digits", "arch": "dcgan", "loss": "wgan-gp", "cond": "onehot", "steps": 1500},
    ),
    "toy-ring": (
        "mode-collapse recipe for toy:ring: PacGAN packing (4) of an MLP critic, BCE, EMA, 20,000 steps; sample "
        "with `gantool evaluate --sampler drs --drs-steps 2000`",
        {"data": "toy:ring", "arch": {"name": "pac", "base": "mlp", "pack": 4, "hidden_dim": 128, "g_depth": 3,
                                      "d_depth": 3},
         "loss": "bce", "cond": "none", "g_batch": "reuse", "latent_dim": 8, "batch_size": 256, "ema": 0.999,
         "steps": 20000,
         "track": ["modes", "hq", "rkl"], "track_every": 1000, "log_every": 500, "sample_every": 2000,
         "checkpoint_every": 5000},
    ),
    "toy-grid": (
        "mode-collapse recipe for toy:grid: PacGAN packing (2) of an MLP critic (hidden 64), BCE, EMA, 40,000 "
        "steps; logs mode coverage",
        {"data": "toy:grid", "arch": {"name": "pac", "base": "mlp", "pack": 2, "hidden_dim": 64, "g_depth": 3,
                                      "d_depth": 3},
         "loss": "bce", "cond": "none", "g_batch": "fresh", "latent_dim": 8, "batch_size": 256, "ema": 0.999,
         "steps": 40000,
         "track": ["modes", "hq", "rkl"], "track_every": 1000, "log_every": 500, "sample_every": 2000,
         "checkpoint_every": 5000},
    ),
}


@hookimpl
def register_configs(register):
    for name, (summary, values) in PRESETS.items():
        register(name, values, summary=summary)
