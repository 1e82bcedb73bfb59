"""`gantool list` and `gantool plugins`: what is installed, by whom, and what failed to load."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from gantoolkit.kinds import KINDS

#: each kind by its shortest plural word: archs, losses, conds, ...
KIND_HELP = ", ".join(min((w for w in (k.plural, *k.aliases) if w.endswith("s")), key=len)
                      for k in KINDS.values()) + "; all when omitted."


def register(app: typer.Typer) -> None:
    @app.command("list", rich_help_panel="Plugins")
    def list_(
        kind: Annotated[Optional[str], typer.Argument(help=KIND_HELP)] = None,
        pattern: Annotated[str, typer.Argument(help="fnmatch pattern, e.g. 'wgan*'.")] = "*",
        options: Annotated[bool, typer.Option("--options", help="Show each component's options.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List registered components, optionally filtered by a pattern."""
        from rich.table import Table

        from gantoolkit.cli.common import out_console
        from gantoolkit.registry import get_registry

        registry = get_registry()
        kinds = [registry.kind(kind)] if kind else list(KINDS)
        rows = []
        for k in kinds:
            for spec in registry.list(k, pattern):
                row: dict[str, Any] = {"kind": k, "name": spec.name + (f":{spec.argument}" if spec.argument else ""),
                       "summary": spec.summary, "plugin": spec.plugin, "distribution": spec.distribution}
                if options and KINDS[k].has_options:
                    row["options"] = [o.describe() for o in spec.options().values()]
                rows.append(row)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table("kind", "name", "summary", "from", show_lines=options)
        for row in rows:
            summary = row["summary"] + ("\n  " + "\n  ".join(row["options"]) if row.get("options") else "")
            source = "built-in" if row["distribution"] == "gantoolkit" else str(row["distribution"] or row["plugin"])
            table.add_row(row["kind"], row["name"], summary, source)
        out_console().print(table if rows else f"no {kind or 'components'} match {pattern!r}")

    @app.command(rich_help_panel="Plugins")
    def plugins(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
        """Every plugin: its distribution, version, what it registered, and any load error (then exit 1)."""
        from rich.table import Table
        from rich.text import Text

        from gantoolkit.cli.common import out_console
        from gantoolkit.registry import get_registry

        records = list(get_registry().host.records.values())
        failed = any(r.errors for r in records)  # scripts can notice: the exit code is 1 when a plugin failed
        if as_json:
            typer.echo(json.dumps([r.to_json() for r in records], indent=2))
            raise typer.Exit(1 if failed else 0)
        table = Table("plugin", "distribution", "registered", "status")
        for r in records:
            registered = ", ".join(f"{kind}:{name}" for kind, name in r.registered) or "-"
            status = Text("; ".join(r.errors), style="red") if r.errors else Text("ok", style="green")
            if r.disabled:
                status = Text("disabled by GANTOOL_DISABLE_PLUGINS", style="yellow")
            table.add_row(r.name, f"{r.distribution or '?'} {r.version or ''}", registered, status)
        out_console().print(table)
        raise typer.Exit(1 if failed else 0)
