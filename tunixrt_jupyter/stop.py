"""Stop requests: why a run is being asked to stop, written before the signal is sent.

SIGTERM alone cannot say whether the user cancelled or the run timed out. Whoever stops a
run (widget, shell, supervisor, the worker's own timeout watchdog) first writes
``stop_request.json``; the worker reads it when the signal arrives and ends with that status.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

STOP_FILE = "stop_request.json"


def request_stop(run_dir: str | os.PathLike, reason: str) -> None:
    """Record ``reason`` ("cancelled" or "timeout") unless a stop was already requested."""
    path = Path(run_dir) / STOP_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return  # the first reason wins, like the first terminal status
    with os.fdopen(fd, "w") as f:
        json.dump({"reason": reason, "t": time.time()}, f)


def stop_reason(run_dir: str | os.PathLike) -> str | None:
    try:
        return json.loads((Path(run_dir) / STOP_FILE).read_text()).get("reason")
    except (FileNotFoundError, ValueError):
        return None
