"""Built-in demo plugin: the `gantool demo` command (hookimpls only: no torch or gradio import here)."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_commands(register):
    register("demo", "gantoolkit.builtin.demo.command:demo", panel="Controllable generation",
             summary="Edit a checkpoint's latent features in the browser (Gradio, offline, on 127.0.0.1).",
             epilog="Examples:\n\n  gantool demo runs/digits-dcgan-wgan-gp-onehot\n\n"
                    "  gantool demo runs/digits --directions sefa.safetensors --classifier clf.safetensors "
                    "--port 8080")
