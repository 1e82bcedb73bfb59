"""Errors that reach the user as one clear line (what went wrong, how to fix it)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GanToolkitError(Exception):
    """A problem the user can fix. The CLI prints it as one line and exits with `exit_code`."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UnknownComponentError(GanToolkitError):
    """A name that no installed plugin registers."""


class PluginError(GanToolkitError):
    """A plugin failed to load, raised in a hook, or clashed with another plugin."""


class ConfigError(GanToolkitError):
    """An invalid option, flag or configuration file."""


class DataError(GanToolkitError):
    """A dataset that cannot be found, read, or used the way it was asked for."""


class CheckpointError(GanToolkitError):
    """A checkpoint that is missing, corrupt, foreign, or needs a plugin that is not installed."""


class RunDirectoryError(GanToolkitError):
    """A run directory that would be overwritten, or that holds no checkpoint."""


class OutputError(GanToolkitError):
    """An output that would replace a file it should not (another kind, the input, a link, a run's checkpoints)."""


class TrainingError(GanToolkitError):
    """Training cannot go on (for example a loss became NaN)."""

    exit_code = 3


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The registered names that look most like `name`, best first."""
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A hint naming the closest choices, or listing them all when none is close."""
    choices = sorted(choices)
    if not choices:
        return "none is installed; see `gantool list` and `gantool plugins`"
    near = closest(name, choices)
    if near:
        return "did you mean " + " or ".join(repr(c) for c in near) + "?"
    if len(choices) <= 12:
        return "choose from " + ", ".join(choices)
    return "see `gantool list` for the names"
