"""Output of code-mode runs: complete lines into the run folder's ``stdout.log``/``stderr.log``.

Kernel and inline runs have no child process writing those files, so their executors feed
text through a :class:`LogSink` instead: it cuts text into complete lines (keeping only the
last redraw of ``\\r`` progress bars), strips ANSI colours and appends each line to the
stream's file, which is what the widget, ``Run.logs`` and the catalog already read.

``EMIT_LOG_EVENTS`` would also write every line as a ``log`` event; it is off because every
reader of a run folder (``live.RunTail``, ``logtail``, ``store.ingest``) reads both the files
and the ``log`` events, so writing both would show each line twice.

:class:`ThreadRouter` gives inline runs a thread-aware ``sys.stdout``/``sys.stderr``: writes
from a registered thread go to that thread's sink, every other thread writes through.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

from .events import append_event

EMIT_LOG_EVENTS = False
STREAMS = ("stdout", "stderr")
MAX_PENDING = 64 * 1024  # a line longer than this (no newline yet) is cut, not held forever

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _last_redraw(line: str) -> str:
    """``a\\rb\\rc`` (a progress bar redrawn in place) -> ``c``; ``abc\\r`` -> ``abc``."""
    if "\r" not in line:
        return line
    parts = [p for p in line.split("\r") if p]
    return parts[-1] if parts else ""


class LogSink:
    """Line-buffered, thread-safe writer of one run's stdout/stderr lines."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self._pending = dict.fromkeys(STREAMS, "")
        self._lock = threading.Lock()

    def write(self, stream: str, text: str) -> None:
        stream = stream if stream in STREAMS else "stdout"
        with self._lock:
            data = self._pending[stream] + text
            *lines, rest = data.split("\n")
            if len(rest) > MAX_PENDING:
                rest = _last_redraw(rest)
                if len(rest) > MAX_PENDING:
                    lines.append(rest)
                    rest = ""
            self._pending[stream] = rest
            self._emit(stream, lines)

    def line(self, stream: str, text: str) -> None:
        """Whole lines at once (a message from tunixrt itself, a traceback)."""
        with self._lock:
            self._emit(stream, text.rstrip("\n").split("\n"))

    def flush(self) -> None:
        with self._lock:
            for stream in STREAMS:
                if self._pending[stream]:
                    rest, self._pending[stream] = self._pending[stream], ""
                    self._emit(stream, [rest])

    def _emit(self, stream: str, lines: list[str]) -> None:
        if not lines:
            return
        lines = [strip_ansi(_last_redraw(line)) for line in lines]
        data = "".join(line + "\n" for line in lines).encode("utf-8", "replace")
        fd = os.open(self.run_dir / f"{stream}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                     0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        if EMIT_LOG_EVENTS:
            for line in lines:
                append_event(self.run_dir, "log", stream=stream, line=line)


class _RoutedStream:
    """Stands in for ``sys.stdout``/``sys.stderr``; routes writes by the writing thread."""

    def __init__(self, original: Any, name: str, router: ThreadRouter):
        self._original, self._name, self._router = original, name, router

    def write(self, text: str) -> int:
        sink = self._router.sink_for(threading.get_ident())
        if sink is None:
            return self._original.write(text)
        sink.write(self._name, str(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._router.sink_for(threading.get_ident()) is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class ThreadRouter:
    """Installs routed ``sys.stdout``/``sys.stderr`` while at least one thread is captured."""

    def __init__(self) -> None:
        self._sinks: dict[int, LogSink] = {}
        self._lock = threading.Lock()
        self._installed: dict[str, _RoutedStream] = {}

    def sink_for(self, ident: int) -> LogSink | None:
        return self._sinks.get(ident)

    def capture(self, ident: int, sink: LogSink) -> None:
        with self._lock:
            self._sinks[ident] = sink
            for name in STREAMS:
                current = getattr(sys, name)
                if not isinstance(current, _RoutedStream) or current._router is not self:
                    routed = _RoutedStream(current, name, self)
                    self._installed[name] = routed
                    setattr(sys, name, routed)

    def release(self, ident: int) -> None:
        with self._lock:
            sink = self._sinks.pop(ident, None)
            if sink is not None:
                sink.flush()
            if self._sinks:
                return
            for name, routed in list(self._installed.items()):
                if getattr(sys, name) is routed:  # someone else swapped it since: leave theirs
                    setattr(sys, name, routed._original)
                del self._installed[name]


ROUTER = ThreadRouter()
