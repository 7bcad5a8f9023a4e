"""nbval support for the example notebooks.

``pytest --nbval examples --nbval-sanitize-with examples/sanitize.cfg`` starts one kernel
per notebook. The kernels (and the runs they start) get one shared XLA compilation cache,
the one the worker tests use: every notebook keeps its runs in a fresh ``TUNIXRT_HOME``,
whose default cache (``<home>/cache/jax``) would make each notebook compile the tiny model
from scratch (about 20 s on two cores, versus 4 s for a whole run with a warm cache).
Compiled programs do not change results, so the stored outputs are the same either way.
The variable is set only while a notebook's kernel starts, never for the other tests.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

CACHE_VAR = "JAX_COMPILATION_CACHE_DIR"
SHARED_JAX_CACHE = Path(tempfile.gettempdir()) / f"tunixrt-tests-jax-cache-{os.getuid()}"

#: nbval's comment markers (nbval.plugin.comment_markers): a comment line holding exactly one.
NBVAL_MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION",
                 "NBVAL_SKIP", "PYTEST_VALIDATE_IGNORE_OUTPUT")


def nbval_markers(source: str) -> set[str]:
    """The nbval markers of a cell, found the way nbval finds them."""
    found = set()
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("#") and line.lstrip("#").strip() in NBVAL_MARKERS:
            found.add(line.lstrip("#").strip())
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """nbval starts a notebook's kernel while setting up its first cell: share the cache."""
    saved = os.environ.get(CACHE_VAR)
    if saved is None and item.path.suffix == ".ipynb":
        os.environ[CACHE_VAR] = str(SHARED_JAX_CACHE)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(CACHE_VAR, None)
