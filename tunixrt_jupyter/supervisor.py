"""The launching process's background supervisor: exits, timeouts, catalog ingest.

One daemon thread per process watches every run this process started. It is the only
code that turns an executor's exit code into a status (a worker killed by a signal
cannot say so itself), backs up the worker's own timeout, and ingests run folders into
the catalog in batches (every ~0.25 s) without ever blocking a run on a busy catalog.
The thread stops when nothing is left to watch and starts again on the next run.
"""

from __future__ import annotations

import atexit
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig
from .events import current_status
from .executors.base import Execution
from .home import Home
from .lifecycle import is_terminal, transition
from .live import RunTail
from .stop import stop_reason

TICK_S = 0.2
# While runs train, the catalog is caught up every few seconds only: live views read the
# run folders, and each DuckDB open/ingest/close costs CPU that a 2-core machine would take
# from training (measured: ingesting every 0.25 s cut steps/s by ~20%). A run's start and
# end are ingested at once, so the history never lags on what matters.
INGEST_LIVE_S = 3.0
RETRY_S = 0.25
TIMEOUT_SLACK_S = 5.0


@dataclass
class Tracked:
    run_dir: Path
    execution: Execution
    config: RunConfig
    tail: RunTail
    timeout_fired: bool = False
    stop_forwarded: bool = False


def finalize(run_dir: Path, exit_code: int) -> None:
    """Name how the work ended when it did not record a final status itself."""
    if is_terminal(current_status(run_dir)):
        return
    reason = stop_reason(run_dir)
    if reason:
        transition(run_dir, reason, exit_code=exit_code)
    elif exit_code < 0:
        name = signal.Signals(-exit_code).name
        transition(run_dir, "failed", exit_code=exit_code, signal=name,
                   error=f"worker was killed by {name}")
    else:
        transition(run_dir, "failed", exit_code=exit_code,
                   error=f"worker exited with code {exit_code} without a final status; "
                         "see stderr.log in the run folder")


class Supervisor:
    def __init__(self, home: Home):
        self.home = home
        self._runs: dict[str, Tracked] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dirty: set[str] = set()
        self._last_ingest = 0.0
        self._urgent = True
        self._closing = threading.Event()

    def track(self, run_dir: Path, execution: Execution, config: RunConfig) -> None:
        with self._lock:
            self._runs[run_dir.name] = Tracked(run_dir, execution, config,
                                               RunTail(run_dir, logs=False))
            self._dirty.add(run_dir.name)
            self._urgent = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="tunixrt-supervisor",
                                                daemon=True)
                self._thread.start()

    def execution(self, run_id: str) -> Execution | None:
        with self._lock:
            tracked = self._runs.get(run_id)
        return tracked.execution if tracked else None

    def tracked_ids(self) -> set[str]:
        with self._lock:
            return set(self._runs)

    def close(self, timeout: float = 5.0) -> None:
        """At interpreter exit: stop watching (runs go on) without a DuckDB call in flight.

        A daemon thread killed inside DuckDB during shutdown aborts the whole process
        ("terminate called ..."), so the thread is asked to finish its tick first.
        """
        self._closing.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._closing.is_set():
            with self._lock:
                runs = list(self._runs.values())
            for tracked in runs:
                self._check(tracked)
            self._maybe_ingest(force=not runs)
            with self._lock:
                if not self._runs and not self._dirty:
                    self._thread = None
                    return
            time.sleep(TICK_S)

    def _check(self, tracked: Tracked) -> None:
        run_id = tracked.run_dir.name
        if not tracked.run_dir.is_dir():  # its folder was deleted: nothing left to watch
            with self._lock:
                self._runs.pop(run_id, None)
                self._dirty.discard(run_id)
            return
        update = tracked.tail.poll()
        if update:
            self._dirty.add(run_id)
            if update.statuses:  # pending -> running and the like: show it in the history now
                self._urgent = True
        if not tracked.stop_forwarded:
            reason = stop_reason(tracked.run_dir)
            if reason:  # asked from elsewhere (server, shell, another kernel): act on it here
                tracked.stop_forwarded = True
                tracked.execution.cancel(reason)
        timeout = tracked.config.run.timeout_s
        started = tracked.tail.state.started_at
        if (timeout and started and not tracked.timeout_fired
                and time.time() - started > timeout + tracked.config.run.grace_s + TIMEOUT_SLACK_S):
            tracked.timeout_fired = True  # the worker's own watchdog did not end it: force
            tracked.execution.cancel("timeout")
        code = tracked.execution.poll()
        if code is None:
            return
        finalize(tracked.run_dir, code)
        with self._lock:
            self._runs.pop(run_id, None)
            self._dirty.add(run_id)
            self._urgent = True

    def _maybe_ingest(self, force: bool = False) -> None:
        interval = 0.0 if (force or self._urgent) else INGEST_LIVE_S
        if not self._dirty or time.monotonic() - self._last_ingest < interval:
            return
        from .store.catalog import Catalog

        with self._lock:
            ids = sorted(self._dirty)
        try:
            done = Catalog(self.home.root).try_ingest(run_ids=ids)
        except Exception:  # noqa: BLE001 - the catalog must never take a run down
            done = False
        self._last_ingest = time.monotonic()
        if done:
            with self._lock:
                self._dirty.difference_update(ids)
                self._urgent = False
        elif force:
            time.sleep(RETRY_S)  # busy catalog and nothing else to do: retry shortly


_SUPERVISORS: dict[Path, Supervisor] = {}
_SUP_LOCK = threading.Lock()


@atexit.register
def _close_all() -> None:
    for sup in list(_SUPERVISORS.values()):
        sup.close()


def get_supervisor(home: Home) -> Supervisor:
    with _SUP_LOCK:
        sup = _SUPERVISORS.get(home.root)
        if sup is None:
            sup = _SUPERVISORS[home.root] = Supervisor(home)
        return sup


def supervised_execution(home: Home, run_id: str) -> Execution | None:
    sup = _SUPERVISORS.get(home.root)
    return sup.execution(run_id) if sup else None
