"""Stopping a whole process group: SIGTERM, a grace period, then SIGKILL.

Used by every path that stops a subprocess run (supervisor, widget, shell), so "nothing
of the group survives" is implemented once.
"""

from __future__ import annotations

import os
import signal
import time

from ..procinfo import ProcessRecord

POLL_S = 0.05


def signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def wait_group_gone(record: ProcessRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not record.group_pids():
            return True
        time.sleep(POLL_S)
    return not record.group_pids()


def terminate_group(record: ProcessRecord, grace_s: float) -> bool:
    """SIGTERM the group, wait up to ``grace_s``, SIGKILL what is left; True if it was killed."""
    if record.pgid <= 1 or record.pgid == os.getpgrp():
        raise RuntimeError(f"refusing to signal process group {record.pgid} (our own group)")
    signal_group(record.pgid, signal.SIGTERM)
    if wait_group_gone(record, grace_s):
        return False
    signal_group(record.pgid, signal.SIGKILL)
    wait_group_gone(record, 5.0)
    return True
