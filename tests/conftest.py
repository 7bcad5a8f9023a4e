"""Shared fixtures: a private TUNIXRT_HOME per test; helpers live in tunixrt_testutil."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the real-browser harness (nbbrowser)
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tunixrt_testutil


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh tunixrt home for one test, also exported for child processes."""
    from tunixrt_jupyter.home import Home

    root = tmp_path / "home"
    monkeypatch.setenv("TUNIXRT_HOME", str(root))
    return Home(root).ensure()
