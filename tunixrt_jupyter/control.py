"""Stopping runs and finding lost ones, from any process (kernel, another kernel, shell).

Cancel works on the run folder alone (stop request + the recorded process group), so
``tunixrt cancel ID`` in a shell stops a run a notebook started. A run is declared
``lost`` only when its recorded process is provably gone (pid *and* start time) and it
never wrote a final status.
"""

from __future__ import annotations

import time
from pathlib import Path

from .events import current_status
from .executors.process_group import terminate_group
from .home import Home
from .lifecycle import is_terminal, transition
from .procinfo import ProcessRecord
from .stop import request_stop

NO_PROCESS_GRACE_S = 60.0  # a folder with no process.json yet may still be starting
OWN_GROUP_EXECUTORS = ("subprocess", "kernel")  # started in a session of their own


def cancel_run(home: Home, run_dir: Path, reason: str = "cancelled", *, grace_s: float = 10.0,
               wait: bool = True) -> str | None:
    """Stop a run: pending ones at once, running ones by SIGTERM, grace, SIGKILL."""
    from .supervisor import supervised_execution

    status = current_status(run_dir)
    if is_terminal(status):
        return status
    request_stop(run_dir, reason)
    if status in (None, "pending"):
        transition(run_dir, reason, reason_detail="stopped before it started")
    execution = supervised_execution(home, run_dir.name)
    if execution is not None:
        execution.cancel(reason)
        if wait:
            deadline = time.monotonic() + grace_s + 10
            while execution.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        return current_status(run_dir)
    record = ProcessRecord.load(run_dir)
    alive = record is not None and record.is_alive()
    if alive and record.executor in OWN_GROUP_EXECUTORS:
        terminate_group(record, grace_s)
    elif alive:
        # An inline run lives in another kernel's own process: never signal that. Its
        # supervisor sees the stop request and stops the run at the next Tunix step.
        if wait:
            deadline = time.monotonic() + grace_s + 10
            while not is_terminal(current_status(run_dir)) and time.monotonic() < deadline:
                time.sleep(0.05)
        return current_status(run_dir)
    if not is_terminal(current_status(run_dir)):
        transition(run_dir, reason)  # killed before it could say so itself
    return current_status(run_dir)


def is_lost(run_dir: Path) -> bool:
    """True when a non-final run's process is provably gone."""
    if is_terminal(current_status(run_dir)):
        return False
    record = ProcessRecord.load(run_dir)
    if record is None:
        try:
            age = time.time() - (run_dir / "config.yaml").stat().st_mtime
        except FileNotFoundError:
            return False
        return age > NO_PROCESS_GRACE_S
    return not record.is_alive()


def reconcile_lost(home: Home, run_ids: list[str], skip: set[str] = frozenset()) -> list[str]:
    """Mark the given non-final runs ``lost`` when their process is gone; returns those marked."""
    marked = []
    for run_id in run_ids:
        if run_id in skip:
            continue
        run_dir = home.run_dir(run_id)
        if run_dir.is_dir() and is_lost(run_dir) and transition(
            run_dir, "lost", error="the run's process ended without recording a final status"
        ):
            marked.append(run_id)
    return marked
