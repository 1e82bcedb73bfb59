"""Run the gantoolkit demo: `python demo/app.py CKPT|RUN [options]` is `gantool demo CKPT|RUN [options]`.

    python demo/app.py runs/digits-dcgan-wgan-gp-onehot --port 7860
    python demo/app.py --help
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """The `demo` command of the `gantool` app, with its one-line errors and exit codes."""
    from gantoolkit.cli.app import build_app, error_line
    from gantoolkit.errors import GanToolkitError

    try:
        app = build_app()
    except GanToolkitError as e:  # e.g. a broken plugin under GANTOOL_STRICT_PLUGINS=1
        error_line(str(e))
        sys.exit(e.exit_code)
    app(["demo", *(sys.argv[1:] if argv is None else argv)], prog_name="gantool")


if __name__ == "__main__":
    main()
