"""The plugin's tests run against the installed distribution, found through its entry point."""

from __future__ import annotations

import pytest
import torch

from gantoolkit.registry import Registry

torch.set_num_threads(1)  # tiny models: one thread is fastest, and leaves the other cores alone


@pytest.fixture(scope="session")
def registry() -> Registry:
    """Built-ins plus every installed plugin; fails (naming the rule) unless gantool-sngan loads cleanly."""
    from gantoolkit.testing import check_plugin

    return check_plugin("gantool-sngan", components=False)
