"""Background delivery: a daemon thread per live view that polls the run folder and pushes.

Why a thread: a training run lasts minutes to hours while the user keeps running other
cells; the kernel's main thread is busy then, but IOPub has its own thread in ipykernel,
so messages a side thread sends still reach the browser at once.

ipykernel 7 subtlety (ipywidgets #4001 / #4020, ipykernel #1450 / #1451): ipykernel 7.0
keeps the current request's parent header in a ``ContextVar``. A thread started with
``threading.Thread`` begins with an *empty* context, so in 7.0.0 every comm send from it
raised ``LookupError(<ContextVar name='shell_parent'>)``; 7.0.1 added a fallback to the
shell's context (the latest cell). We run the thread body inside a copy of the creating
thread's context (``contextvars.copy_context().run``): the parent is then the cell that
created the view, on ipykernel 6 (no ContextVar, unaffected), 7.0.0 and 7.0.1+ alike.
Comm messages are routed by comm id, not by parent, so any valid parent works.
Verified with real kernels (see tests/widgets): 6.29.5, 7.0.0 (where a plain thread fails
with that LookupError) and 7.4.0.

Where thread messages never reach the page at all (Colab: googlecolab/colabtools#3373),
the browser polls and the kernel answers from the message handler; see RunWidget.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("tunixrt.widgets")

_LIVE: weakref.WeakSet[Stoppable] = weakref.WeakSet()


class Stoppable(Protocol):
    def stop(self) -> None: ...


def register(view: Stoppable) -> None:
    """Remember a live view so ``shutdown_views()`` can stop its thread."""
    _LIVE.add(view)


def shutdown_views() -> int:
    """Stop every live view's delivery thread (``%unload_ext``); returns how many."""
    views = list(_LIVE)
    for view in views:
        try:
            view.stop()
        except Exception:  # noqa: BLE001 - one bad view must not keep others running
            log.exception("stopping a view failed")
    return len(views)


class Ticker:
    """Calls ``tick()`` every ``interval`` seconds on a daemon thread until it returns False.

    ``tick`` may raise: the error is logged and counted; after ``max_errors`` in a row the
    thread gives up (the browser's poll still keeps the view current).
    """

    def __init__(self, tick: Callable[[], bool], interval: float, name: str,
                 max_errors: int = 20, idle_interval: float | None = None):
        self._tick = tick
        self.interval = interval
        self.idle_interval = idle_interval or interval
        self.name = name
        self.max_errors = max_errors
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.idle = False  # a tick may set this to slow down while nothing changes
        self.errors = 0
        self.last_error: str | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.alive:
            return
        self._stop.clear()
        ctx = contextvars.copy_context()  # see module docstring: ipykernel 7.0 parent header
        self._thread = threading.Thread(target=ctx.run, args=(self._loop,), name=self.name,
                                        daemon=True)
        self._thread.start()

    def stop(self, join: float | None = None) -> None:
        self._stop.set()
        t = self._thread
        if join and t is not None and t is not threading.current_thread():
            t.join(join)

    def wake(self) -> None:
        """Leave idle pacing (something happened, e.g. a view asked)."""
        self.idle = False

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                more = self._tick()
                self.errors = 0
            except Exception as exc:  # noqa: BLE001 - keep the view alive, report once
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self.errors == 1:
                    log.warning("tunixrt live view update failed (%s); retrying",
                                self.last_error, exc_info=True)
                more = self.errors < self.max_errors
            if not more:
                break
            self._stop.wait(self.idle_interval if self.idle else self.interval)
