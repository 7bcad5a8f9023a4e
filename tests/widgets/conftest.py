"""Fixtures for widget tests (helpers live in widget_helpers.py)."""

from __future__ import annotations

import pytest
from widget_helpers import KernelSession, RunFolder, kernel_names


@pytest.fixture
def run_folder(tmp_path) -> RunFolder:
    """A run folder with its first event (pending), under a fresh home."""
    rf = RunFolder(tmp_path / "home")
    rf.event("status", status="pending")
    return rf


@pytest.fixture(params=kernel_names())
def kernel(request, tmp_path) -> KernelSession:
    """A real kernel per test (each kernelspec named in TUNIXRT_TEST_KERNELS)."""
    session = KernelSession(request.param, tmp_path)
    yield session
    session.close()
