"""Stopping a run cleanly: SIGTERM/SIGINT and the worker's own timeout set one flag.

The signal handler only sets a flag, never raises: an exception thrown into the middle of
a JAX computation or an orbax save could leave a half-written checkpoint. The training
loop reads the flag before each step (see ``training.StopAwareBatches``), so the run stops
at the next step boundary, saves a checkpoint and records why it stopped.

The timeout watchdog lives here too, so a run's ``timeout_s`` holds even when no
supervisor is watching (the kernel that launched it may be gone).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from ..lifecycle import transition
from ..stop import request_stop, stop_reason


class StopFlag:
    """Set once when the run should stop; safe to read from any thread."""

    def __init__(self, *, in_process: bool = False) -> None:
        self._event = threading.Event()
        self.signal: int | None = None
        #: The run shares its process with others (inline executor: the notebook kernel),
        #: so nothing may end the process, not even the timeout watchdog.
        self.in_process = in_process

    def set(self, signum: int | None = None) -> None:
        if signum is not None and self.signal is None:
            self.signal = signum
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    __call__ = is_set  # usable directly as acquire_slot(should_stop=flag)


def install_signal_handlers(flag: StopFlag) -> bool:
    """SIGTERM / SIGINT set ``flag``; only possible (and needed) in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return False

    def handler(signum: int, _frame: FrameType | None) -> None:
        flag.set(signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return True


class TimeoutWatchdog:
    """After ``timeout_s``: record a ``timeout`` stop request and set the stop flag.

    If the run has still not finished ``grace_s`` later (stuck in a download or a compile
    that never reaches a step boundary), it records ``timeout`` itself and ends the process,
    exactly as an executor's SIGKILL after its grace period would; never for a flag marked
    ``in_process`` (a run inside the notebook kernel only gets the clean stop).
    """

    def __init__(self, run_dir: Path, flag: StopFlag, timeout_s: float, grace_s: float,
                 hard_exit: Callable[[int], None] | None = os._exit):
        self.run_dir, self.flag = run_dir, flag
        self.timeout_s, self.grace_s = timeout_s, grace_s
        self._done = threading.Event()
        self._hard_exit = None if flag.in_process else hard_exit
        self._thread = threading.Thread(target=self._watch, name="tunixrt-timeout", daemon=True)

    def start(self) -> TimeoutWatchdog:
        self._thread.start()
        return self

    def finish(self) -> None:
        """The run reached its end: disarm both deadlines."""
        self._done.set()

    def _watch(self) -> None:
        if self._done.wait(self.timeout_s):
            return
        request_stop(self.run_dir, "timeout")
        self.flag.set()
        if self._hard_exit is None or self._done.wait(max(self.grace_s, 1.0)):
            return
        reason = stop_reason(self.run_dir) or "timeout"
        transition(self.run_dir, reason, error=(
            f"the run did not stop within run.grace_s={self.grace_s:g}s after its "
            f"run.timeout_s={self.timeout_s:g}s; the worker ended it"))
        self._hard_exit(1)


class RunStopped(Exception):
    """Raised between set-up phases (never inside JAX) when the stop flag is already set."""

    def __init__(self, step: int = 0):
        super().__init__(f"stopped at step {step}")
        self.step = step


def check_stop(flag: StopFlag, step: int = 0) -> None:
    """Bail out between phases (data, model, trainer) instead of starting work to discard."""
    if flag.is_set():
        raise RunStopped(step)
