"""Cross-process concurrency slots: at most ``max_concurrent`` runs train at once per home.

A run holds an fcntl lock on one of ``slots/slot-<i>.lock`` for as long as it trains; the
kernel releases it when the process dies, however it dies, so a crashed run can never
leak its slot. Waiting runs take tickets in ``slots/queue/`` named by creation time and
only the oldest live ticket may grab a free slot, so runs start in the order they were
launched, whichever process (kernel, shell) launched them. The launcher takes the ticket
when it creates the run (:func:`enqueue`), so a worker that happens to start sooner cannot
overtake a run launched before it; a ticket nobody waits on yet stays in line while its run
is pending and its process may still be starting.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

POLL_S = 0.1
UNCLAIMED_GRACE_S = 60.0  # a ticket's run with no process record yet may still be starting


def _queue(slots_dir: Path) -> Path:
    return slots_dir / "queue"


def enqueue(slots_dir: str | os.PathLike, run_id: str) -> Path:
    """Take the run's place in line at launch time (before its worker even starts)."""
    queue = _queue(Path(slots_dir))
    queue.mkdir(parents=True, exist_ok=True)
    ticket = queue / f"{time.time_ns():020d}-{run_id}"
    ticket.touch()
    return ticket


class Slot:
    """A held slot; ``release()`` (or process exit) frees it."""

    def __init__(self, fd: int, index: int):
        self.fd, self.index = fd, index

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def _try_slots(slots_dir: Path, max_concurrent: int) -> Slot | None:
    for i in range(max_concurrent):
        fd = os.open(slots_dir / f"slot-{i}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return Slot(fd, i)
        except BlockingIOError:
            os.close(fd)
    return None


def _ticket_alive(ticket: Path) -> bool:
    """Live while a waiter holds a lock on it, or, unclaimed, while its run may still start."""
    try:
        fd = os.open(ticket, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return _unclaimed_run_may_start(ticket)


def _unclaimed_run_may_start(ticket: Path) -> bool:
    from .events import current_status
    from .procinfo import ProcessRecord

    run_dir = ticket.parent.parent.parent / "runs" / ticket.name[21:]
    if not run_dir.is_dir() or current_status(run_dir) not in (None, "pending"):
        return False
    record = ProcessRecord.load(run_dir)
    if record is not None:
        return record.is_alive()
    try:
        return time.time() - ticket.stat().st_mtime < UNCLAIMED_GRACE_S
    except FileNotFoundError:
        return False


def acquire_slot(
    slots_dir: str | os.PathLike,
    run_id: str,
    max_concurrent: int = 1,
    should_stop: Callable[[], bool] = lambda: False,
) -> Slot | None:
    """Wait for a free slot in FIFO order; None when ``should_stop()`` turned true first."""
    slots_dir = Path(slots_dir)
    queue = _queue(slots_dir)
    queue.mkdir(parents=True, exist_ok=True)
    mine = sorted(queue.glob(f"*-{run_id}"))
    ticket = mine[0] if mine else enqueue(slots_dir, run_id)
    tfd = os.open(ticket, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(tfd, fcntl.LOCK_EX)
    try:
        while not should_stop():
            if _first_live_ticket(queue) == ticket.name:
                slot = _try_slots(slots_dir, max_concurrent)
                if slot is not None:
                    return slot
            time.sleep(POLL_S)
        return None
    finally:
        ticket.unlink(missing_ok=True)
        os.close(tfd)


def _first_live_ticket(queue: Path) -> str | None:
    for name in sorted(os.listdir(queue)):
        path = queue / name
        try:
            if _ticket_alive(path):
                return name
            path.unlink(missing_ok=True)  # its waiter died: drop the ticket
        except FileNotFoundError:
            continue
    return None
