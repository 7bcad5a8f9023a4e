"""Incremental reading of a live run folder: what happened since the last look.

Live views (the run widget, ``tunixrt logs --follow``, the demo's progress line) read the
run folder directly rather than the catalog: the worker only appends to files, so a
reader that remembers byte offsets sees every new event and log line exactly once,
cheaply, while the run is still going.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .events import EVENTS_FILE, TERMINAL_STATUSES, read_events

LOG_STREAMS = ("stdout", "stderr")


@dataclass
class TailUpdate:
    """Everything new in a run folder since the previous :meth:`RunTail.poll`."""

    events: list[dict] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)  # (stream, line)

    @property
    def metrics(self) -> list[dict]:
        return [e for e in self.events if e.get("type") == "metric"]

    @property
    def statuses(self) -> list[dict]:
        return [e for e in self.events if e.get("type") == "status"]

    def __bool__(self) -> bool:
        return bool(self.events or self.logs)


@dataclass
class RunState:
    """The folded state of a run as seen so far (cheap to keep current)."""

    status: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    created_at: float | None = None
    step: int | None = None
    total: int | None = None
    platform: str | None = None
    error: str | None = None
    last: dict = field(default_factory=dict)  # last value per metric name
    best: dict = field(default_factory=dict)  # min value per metric name
    checkpoints: list[dict] = field(default_factory=list)
    artifacts: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def apply(self, ev: dict) -> None:
        kind, t = ev.get("type"), ev.get("t")
        if kind == "status":
            if self.status in TERMINAL_STATUSES:
                return
            self.status = ev.get("status")
            if self.status == "pending" and self.created_at is None:
                self.created_at = t
            if self.status == "running":
                self.started_at = self.started_at or t
                self.platform = ev.get("platform") or self.platform
            if self.status in TERMINAL_STATUSES:
                self.ended_at = t
                self.error = ev.get("error") or ev.get("reason") or self.error
                if ev.get("step") is not None:
                    self.step = ev["step"]
        elif kind == "progress":
            self.step = ev.get("step", self.step)
            self.total = ev.get("total") or self.total
        elif kind == "metric":
            name, value = ev.get("name"), ev.get("value")
            if isinstance(value, (int, float)):
                self.last[name] = value
                if name not in self.best or value < self.best[name]:
                    self.best[name] = value
        elif kind == "checkpoint":
            self.checkpoints.append(ev)
        elif kind == "artifact":
            self.artifacts.append(ev)
        elif kind == "error":
            self.error = self.error or ev.get("message")
        elif kind == "info":
            data = {k: v for k, v in ev.items() if k not in ("t", "type")}
            if "key" in data:
                self.info[str(data["key"])] = data.get("value")
            else:
                self.info.update(data)


class RunTail:
    """Reads new events and complete log lines from one run folder, offset by offset."""

    def __init__(self, run_dir: str | os.PathLike, *, logs: bool = True):
        self.run_dir = Path(run_dir)
        self.state = RunState()
        self._offsets = {EVENTS_FILE: 0, **{f"{s}.log": 0 for s in LOG_STREAMS}}
        self._logs = logs

    def skip_existing_logs(self) -> None:
        """Follow only output written from now on (after a ``logs -n`` printed the tail)."""
        for stream in LOG_STREAMS:
            try:
                self._offsets[f"{stream}.log"] = (self.run_dir / f"{stream}.log").stat().st_size
            except FileNotFoundError:
                pass

    def poll(self, max_log_bytes: int = 4 << 20) -> TailUpdate:
        update = TailUpdate()
        events, self._offsets[EVENTS_FILE] = read_events(
            self.run_dir / EVENTS_FILE, self._offsets[EVENTS_FILE]
        )
        for ev in events:
            self.state.apply(ev)
            if ev.get("type") == "log":
                update.logs.append((ev.get("stream", "stdout"), str(ev.get("line", ""))))
        update.events = events
        if self._logs:
            for stream in LOG_STREAMS:
                update.logs.extend(
                    (stream, line) for line in self._read_lines(f"{stream}.log", max_log_bytes)
                )
        return update

    def _read_lines(self, name: str, max_bytes: int) -> list[str]:
        path = self.run_dir / name
        offset = self._offsets[name]
        try:
            size = path.stat().st_size
            if size <= offset:
                return []
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(min(size - offset, max_bytes))
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) >= max_bytes:  # one enormous line: hand it over in pieces
                self._offsets[name] = offset + len(data)
                return [data.decode("utf-8", "replace")]
            return []
        self._offsets[name] = offset + end + 1
        return data[: end + 1].decode("utf-8", "replace").splitlines()
