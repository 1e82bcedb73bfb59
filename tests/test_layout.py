"""The tree shows the layers, and CONTRIBUTING.md's layout says what is there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gantoolkit"


def layout_block() -> str:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    start = text.index("```\ngantoolkit/\n")
    return text[start:text.index("```\n", start + 4)]


def test_contributing_names_every_module_and_package_of_the_top_level():
    block = layout_block()
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    packages = sorted(p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    missing = [name for name in [*modules, *packages] if not re.search(rf"(?<![\w/]){re.escape(name)}", block)]
    assert not missing, f"CONTRIBUTING.md's layout does not name {missing}"


def test_every_module_contributing_names_exists():
    block = layout_block()
    named = set(re.findall(r"(?<![\w/.])([a-z_]+\.py)\b", block))
    existing = {p.name for p in PACKAGE.rglob("*.py")} | {p.name for p in (ROOT / "demo").glob("*.py")}
    assert not named - existing, f"CONTRIBUTING.md names modules that do not exist: {sorted(named - existing)}"


@pytest.mark.process
def test_the_packages_that_group_features_keep_their_init_torch_free():
    code = ("import sys; import gantoolkit.sampling, gantoolkit.sampling.samplers, gantoolkit.training, "
            "gantoolkit.files, gantoolkit.cli.options; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"
