"""`gantool cache ls|clear`: the image cache of folder datasets (gantoolkit.data.cache).

No torch at module level: `gantool --help` imports this module to list the commands.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("ls")
def ls() -> None:
    """List the cached folders: key, images, shape, size on disk, when made, and the folder."""
    from gantoolkit.data import cache

    root, found = cache.cache_dir(), cache.entries()
    if not found:
        typer.echo(f"no cached folders in {root}")
        return
    total = 0
    for entry in found:
        size = cache.disk_bytes(entry)
        total += size
        shape = "x".join(map(str, entry.shape))
        skipped = f", {len(entry.skipped)} skipped" if entry.skipped else ""
        typer.echo(f"{entry.key}  {entry.count:,} images {shape}{skipped}  {cache.human_bytes(size)}  "
                   f"{entry.meta.get('made', '?')}  {entry.meta.get('folder', '?')}")
    typer.echo(f"{len(found)} cached folder(s), {cache.human_bytes(total)} in {root}")


@app.command("clear")
def clear(
    keys: Annotated[Optional[list[str]], typer.Argument(metavar="[KEY]...", help="Entries to remove, as `gantool "
                                                                                  "cache ls` names them (default: "
                                                                                  "all).")] = None,
) -> None:
    """Remove cached folders (all, or those named); a run reading one goes on reading it. The next run on a folder
    decodes it again."""
    from gantoolkit.data import cache
    from gantoolkit.errors import ConfigError

    root, found = cache.cache_dir(), cache.entries()
    by_key = {entry.key: entry for entry in found}
    unknown = [key for key in keys or [] if key not in by_key]
    if unknown:
        raise ConfigError(f"no cached folder {unknown[0]!r} in {root}", "see `gantool cache ls` for the keys")
    chosen = [by_key[key] for key in dict.fromkeys(keys)] if keys else found
    freed = 0
    for entry in chosen:
        freed += cache.disk_bytes(entry)
        with cache.lock(entry.key):  # not while a process is building it
            cache.remove(entry)
    if not keys:
        cache.remove_leftovers()
    typer.echo(f"removed {len(chosen)} cached folder(s), {cache.human_bytes(freed)}, from {root}")
