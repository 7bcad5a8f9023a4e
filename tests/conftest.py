"""Shared fixtures: a private TUNIXRT_HOME per test, and deadline-based waiting."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the real-browser harness (nbbrowser)


def wait_for(predicate: Callable[[], object], timeout: float = 120.0, interval: float = 0.05,
             what: str = "condition") -> object:
    """Poll ``predicate`` until truthy; fail the test with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh tunixrt home for one test, also exported for child processes."""
    from tunixrt_jupyter.home import Home

    root = tmp_path / "home"
    monkeypatch.setenv("TUNIXRT_HOME", str(root))
    return Home(root).ensure()


def tunix_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tunix") is not None


needs_tunix = pytest.mark.skipif(not tunix_available(),
                                 reason='needs tunix: pip install "tunixrt-jupyter[tunix]"')

PYTHON = sys.executable
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
