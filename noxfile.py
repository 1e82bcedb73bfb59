"""Sessions: `nox` runs lint, typecheck and tests; `nox -s quick` (no process-starting tests), `plugins`, `browser`
and `bench` on demand.

Each session gets its own virtual environment (pip takes torch from the machine's wheel cache where it has one).
`nox --no-venv -s tests` runs in the current environment instead.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_venv = "yes"
nox.options.default_venv_backend = "venv"

ROOT = Path(__file__).parent
#: the suite on every CPU (pytest-xdist), a test file per worker so module fixtures train once; `-n 0` in posargs
#: turns it off (`nox -s tests -- -n 0`)
PARALLEL = ("-n", "auto", "--dist", "loadfile")
PLUGINS = sorted(p for p in (ROOT / "plugins").glob("*") if (p / "pyproject.toml").exists())


def install_project(session: nox.Session) -> None:
    if session.venv_backend != "none":
        session.install("-e", ".[dev]")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, browser tests included (they need Debian's chromium at /usr/bin/chromium)."""
    install_project(session)
    session.run("python", "-m", "pytest", *PARALLEL, *session.posargs)


@nox.session
def quick(session: nox.Session) -> None:
    """The fast lane: every test but those that start processes (`@pytest.mark.process`), in under 2 minutes."""
    install_project(session)
    session.run("python", "-m", "pytest", "-q", "-m", "not process and not browser", *PARALLEL, *session.posargs,
                env={"OMP_NUM_THREADS": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package, tests, plugins, demo and benchmarks."""
    if session.venv_backend != "none":
        session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    install_project(session)
    session.run("mypy", "gantoolkit")


@nox.session
def plugins(session: nox.Session) -> None:
    """Install every distribution under plugins/ next to gantoolkit and run its own tests."""
    install_project(session)
    for plugin in PLUGINS:
        session.install("-e", str(plugin))
    for plugin in PLUGINS:  # strict: a plugin that fails to load, clashes or misspells a hook fails the session
        session.run("python", "-m", "pytest", str(plugin / "tests"), *session.posargs,
                    env={"GANTOOL_STRICT_PLUGINS": "1"})


@nox.session
def browser(session: nox.Session) -> None:
    """Only the tests that drive the demo in headless Chromium."""
    install_project(session)
    session.run("python", "-m", "pytest", "-m", "browser", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark script; each prints its table and writes JSON under benchmarks/results/."""
    install_project(session)
    for script in sorted((ROOT / "benchmarks").glob("[!_]*.py")):
        if script.name != "digit_judge.py":
            session.run("python", str(script), *session.posargs)
