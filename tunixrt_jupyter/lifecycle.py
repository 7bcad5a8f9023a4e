"""The one place that changes a run's status.

Worker, supervisor, cancel from a shell and lost-run detection all call
:func:`transition`, which checks the move against the lifecycle table under a per-run
lock and appends the ``status`` event. The first terminal status wins: a late
``failed`` from a supervisor after the worker wrote ``cancelled`` is refused, so the
stored history never contradicts itself.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .events import TERMINAL_STATUSES, append_event, current_status

ALLOWED: dict[str | None, frozenset[str]] = {
    None: frozenset({"pending", "running", "failed", "cancelled", "completed"}),
    "pending": frozenset({"running", "cancelled", "failed", "timeout", "lost"}),
    "running": frozenset(TERMINAL_STATUSES),
}


@contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[None]:
    """A short exclusive lock on the run folder for read-check-append sequences."""
    fd = os.open(Path(run_dir) / ".status.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def transition(run_dir: str | os.PathLike, status: str, **details: Any) -> bool:
    """Move the run to ``status`` if the lifecycle allows it; True when recorded."""
    with run_lock(run_dir):
        now = current_status(run_dir)
        if now == status or status not in ALLOWED.get(now, frozenset()):
            return False
        append_event(run_dir, "status", status=status, **details)
        return True


def is_terminal(status: str | None) -> bool:
    return status in TERMINAL_STATUSES
