"""The `gantool` application: core commands, plugin commands, and one place where errors become one line."""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from gantoolkit.errors import GanToolkitError

#: names plugins may not take
CORE_COMMANDS = {"train", "sample", "info", "export", "list", "plugins", "plot", "report"}

EPILOG = (
    "Examples:\n\n"
    "  gantool train --arch dcgan --loss wgan-gp --cond onehot\n\n"
    "  gantool sample runs/digits-dcgan-wgan-gp-onehot --n 100 --out digits.png\n\n"
    "  gantool list losses\n\n"
    "Add --debug before the command to see tracebacks."
)


def debug_enabled(args: Sequence[str] | None) -> bool:
    argv = list(sys.argv[1:] if args is None else args)
    return "--debug" in argv or os.environ.get("GANTOOL_DEBUG", "") not in ("", "0")


def error_line(message: str, prefix: str = "error") -> None:
    """Print one line to stderr (line breaks and control characters, e.g. from a file's metadata, become spaces)."""
    flat = "".join(ch if ch.isprintable() else " " for ch in " ".join(message.strip().splitlines()))
    print(f"{prefix}: {flat}", file=sys.stderr, flush=True)


def out_of_memory(error: BaseException) -> bool:
    """A failed allocation (host or device), whichever library raised it."""
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or (
        isinstance(error, RuntimeError) and ("can't allocate memory" in str(error) or "out of memory" in str(error))
    )


def os_error_message(error: OSError) -> str:
    """A file-system failure (a full disk, a missing folder, a permission) as one line with what to do."""
    where = f" ({error.filename})" if error.filename else ""
    hints = {errno.ENOSPC: "free some disk space; files written before are intact",
             errno.EACCES: "check the permissions", errno.EROFS: "the file system is read-only",
             errno.ENOENT: "check the path"}
    hint = hints.get(error.errno or 0, "run `gantool --debug ...` for the traceback")
    return f"{error.strerror or error}{where} ({hint})"


class GantoolGroup(TyperGroup):
    """Runs commands non-standalone and reports every failure as one line on stderr with an exit code."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        from gantoolkit.registry import get_registry

        debug = debug_enabled(args)
        try:
            for warning in get_registry().warnings:  # e.g. a plugin that registers a built-in name (ignored)
                error_line(warning, prefix="warning")
            result = super().main(args=args, prog_name=prog_name or "gantool", complete_var=complete_var,
                                  standalone_mode=False, windows_expand_args=windows_expand_args, **extra)
            code = result if isinstance(result, int) else 0
        except GanToolkitError as e:
            if debug:
                traceback.print_exc()
            error_line(str(e))
            code = e.exit_code
        except KeyboardInterrupt:
            error_line("interrupted")
            code = 130
        except typer.Abort:
            error_line("aborted")
            code = 1
        except Exception as e:
            if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # click usage errors, vendored by Typer
                ctx = getattr(e, "ctx", None)
                where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                error_line(f"{e.format_message()}{where}")
                code = int(e.exit_code)
            else:
                if debug:
                    raise
                code = 2  # too large a request, or a file system that refused: the user can fix both
                if out_of_memory(e):
                    error_line("out of memory (use a smaller --batch-size, --image-size, --n or model)")
                elif isinstance(e, OSError):
                    error_line(os_error_message(e))
                else:
                    error_line(f"unexpected {type(e).__name__}: {e} (run `gantool --debug ...` for the traceback)")
                    code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def build_app() -> typer.Typer:
    """A fresh `gantool` app: the core commands, then the commands plugins register."""
    from gantoolkit.cli import inspect, listing, look, sample, train

    app = typer.Typer(
        name="gantool",
        cls=GantoolGroup,
        help="gantoolkit: train, sample, inspect and extend GANs. Every part is a plugin.",
        epilog=EPILOG,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root(
        debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
        version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
    ) -> None:
        if version:
            from gantoolkit import __version__
            typer.echo(f"gantoolkit {__version__}")
            raise typer.Exit()

    train.register(app)
    sample.register(app)
    inspect.register(app)
    look.register(app)
    listing.register(app)
    add_plugin_commands(app)
    return app


def add_plugin_commands(app: typer.Typer) -> None:
    """Mount what plugins register with `register_commands`: a `typer.Typer` becomes a command group
    (`gantool NAME SUBCOMMAND`), a plain function one command (`gantool NAME`). `panel=` names its help panel.
    A core name, or anything else, is a plugin error (built-in plugins' names are kept by the registry)."""
    from gantoolkit.registry import get_registry

    registry = get_registry()
    specs = registry.list("command")
    for spec in specs:
        record = registry.host.records.get(spec.plugin)
        if spec.name in CORE_COMMANDS:
            if record is not None:
                registry.host.fail(record, f"command {spec.name!r} is a core command and cannot be replaced")
            continue
        try:
            sub = spec.load()
        except GanToolkitError as e:
            if record is not None:
                registry.host.fail(record, e.message)
            continue
        panel = spec.extra.get("panel", "Plugin commands")
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=spec.name, help=spec.summary or None, rich_help_panel=panel)
        elif callable(sub):
            app.command(spec.name, help=spec.summary or None, rich_help_panel=panel,
                        epilog=spec.extra.get("epilog"))(sub)
        elif record is not None:
            registry.host.fail(record, f"command {spec.name!r} is a {type(sub).__name__}, not a typer.Typer")


def sleeping_waits() -> None:
    """OpenMP threads waiting for work sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE) unless the environment
    already tunes that: on a busy machine a spinning thread burns the time slice its partner needs, and a step took
    many times longer than its share of the CPU (README: "A busy laptop"). Before torch is imported, or it is too late."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def main() -> None:
    """Console-script entry point."""
    sleeping_waits()
    try:
        app = build_app()
    except GanToolkitError as e:  # e.g. a broken plugin under GANTOOL_STRICT_PLUGINS=1
        error_line(str(e))
        sys.exit(e.exit_code)
    app()
