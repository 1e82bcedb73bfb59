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
}


@hookimpl
def register_configs(register):
    for name, (summary, values) in PRESETS.items():
        register(name, values, summary=summary)
