"""The run folder's ``events.jsonl``: append-only records shared by worker and supervisor.

Each record is one JSON line written with a single ``write()`` on an ``O_APPEND`` file
descriptor and flushed at once, so two processes (the worker and whoever supervises it)
can append to the same file without interleaving, and a crash loses at most the line
being written. Readers keep byte offsets and ignore a trailing partial line.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EVENTS_FILE = "events.jsonl"
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "timeout", "lost"})
STATUSES = ("pending", "running", *sorted(TERMINAL_STATUSES))


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: store them as strings so the line stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def encode_event(type_: str, fields: dict[str, Any]) -> tuple[dict, bytes]:
    """The record (stamped with the time now) and its JSON line."""
    record = {"t": round(time.time(), 6), "type": type_,
              **{k: _clean(v) for k, v in fields.items()}}
    return record, (json.dumps(record, default=str) + "\n").encode()


def _open_for_append(path: Path) -> int:
    """Open for appending; if a killed writer left a torn last line, end it first so the
    next record starts on a line of its own."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")
    return fd


def append_event(run_dir: str | os.PathLike, type_: str, **fields: Any) -> dict:
    """Append one event to ``run_dir/events.jsonl`` (opening and closing the file)."""
    record, data = encode_event(type_, fields)
    fd = _open_for_append(Path(run_dir) / EVENTS_FILE)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return record


class EventWriter:
    """Keeps the events file open for a busy writer (the worker's metrics backend)."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / EVENTS_FILE
        self._fd = _open_for_append(self.path)
        self._lock = threading.Lock()

    def emit(self, type_: str, **fields: Any) -> dict:
        record, data = encode_event(type_, fields)
        with self._lock:
            if self._fd >= 0:
                os.write(self._fd, data)
        return record

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def read_events(path: str | os.PathLike, offset: int = 0) -> tuple[list[dict], int]:
    """Complete events from byte ``offset``; returns them and the offset after the last one."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events = []
    for line in data[: end + 1].splitlines():
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            # A torn line from a killed writer, maybe with a whole record appended to it:
            # keep that record, skip the fragment, never fail the reader.
            start = line.rfind(b'{"t": ')
            if start > 0:
                try:
                    events.append(json.loads(line[start:]))
                except ValueError:
                    pass
    return events, offset + end + 1


def iter_events(run_dir: str | os.PathLike) -> Iterator[dict]:
    events, _ = read_events(Path(run_dir) / EVENTS_FILE)
    yield from events


def current_status(run_dir: str | os.PathLike) -> str | None:
    """The run's status as its event file tells it (first terminal status wins)."""
    status = None
    for ev in iter_events(run_dir):
        if ev.get("type") == "status":
            status = ev.get("status")
            if status in TERMINAL_STATUSES:
                return status
    return status
