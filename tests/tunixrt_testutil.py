"""Test helpers shared by every test folder (a unique module name, unlike ``conftest``)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import pytest


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


def tunix_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tunix") is not None


needs_tunix = pytest.mark.skipif(not tunix_available(),
                                 reason='needs tunix: pip install "tunixrt-jupyter[tunix]"')

PYTHON = sys.executable
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
