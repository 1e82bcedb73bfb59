"""The browser demo: edit the latent features of a trained checkpoint in a Gradio page.

- `controls.py`  the sliders and selectors a generator offers (directions files, its own codes, directions found on
  load) and how their values move z and the codes
- `engine.py`    `DemoEngine`: what picture a set of control values makes (plain torch, tested directly)
- `app.py`       the Gradio Blocks layer: widgets, callbacks that validate and call the engine, `launch`

Nothing here is imported by `gantool --help`; the `demo` command imports it when it runs.
"""
