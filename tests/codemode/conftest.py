"""Fixtures for code-mode tests: an IPython shell, a private home and cwd, and cleanup.

Every test runs real parts: real background kernels (jupyter_client + ipykernel), real
Tunix training in the cell, real threads for the inline executor. Nothing is mocked.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def shell():
    """A real IPython shell: ``user_ns`` is where ``--in`` variables come from."""
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance()


@pytest.fixture
def code_home(home, tmp_path, monkeypatch):
    """A private TUNIXRT_HOME and cwd (the kernel starts in the notebook's cwd); at the end,
    every run still going is cancelled and every kept kernel ended, so no test leaks one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    yield home
    from codemode_helpers import wait_for

    from tunixrt_jupyter.codemode import shutdown_kept_kernel
    from tunixrt_jupyter.control import cancel_run
    from tunixrt_jupyter.handles import Run
    from tunixrt_jupyter.supervisor import get_supervisor

    for run_id in home.run_ids():
        run = Run(home.run_dir(run_id), home)
        if not run.done:
            cancel_run(home, run.dir, grace_s=5.0)
    supervisor = get_supervisor(home)
    wait_for(lambda: not supervisor.tracked_ids(), 60, what="every execution ended")
    for run_id in home.run_ids():
        shutdown_kept_kernel(Run(home.run_dir(run_id), home))
