"""The catalog: ``history.duckdb``, a derived and rebuildable index over ``runs/<run_id>/``.

Connections are short (connect, work, close) so every process gets its turn, and each one
lives entirely inside ``history.lock`` (see ``lock.py`` for why DuckDB's own lock is not
enough):

* writes take the lock exclusive and open read-write;
* reads take it shared and open read-only. Measured (DuckDB 2.0): a read-only open costs the
  same as a read-write one (~20 ms), replays a dead writer's WAL in memory, and never writes
  the file, so readers (a kernel, the Jupyter server, a shell) run side by side and never
  turn a query into a checkpoint. A read-only open would fail beside a writer, which the
  shared lock rules out.

Within one thread, a read or write nested inside a write (through any Catalog object of the
same home) reuses the open connection, so helper code can query while it holds the write lock
without deadlocking itself. A write nested inside a read cannot be served that way: it waits
for the lock and ends in :class:`CatalogBusy`; take the write first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from . import queries, sessions
from .ingest import IngestStats, ingest_runs
from .lock import CatalogBusy, CatalogLock
from .schema import CURRENT_VERSION, SchemaError, current_version, migrate

DB_FILE = "history.duckdb"
LOCK_FILE = "history.lock"
RUNS_DIR = "runs"
DEFAULT_TIMEOUT_S = 60.0
# per thread: catalog file -> the read-write connection this thread holds (for nesting, across
# Catalog objects of the same home, since callers often make a fresh Catalog per call)
_HELD = threading.local()


def _open(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Every DuckDB connection of the store: counted, so the process can exit safely."""
    sessions.enter()
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except BaseException:
        sessions.leave()
        raise


def _close(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.close()
    finally:
        sessions.leave()


class Catalog:
    """The run history of one tunixrt home (``home/history.duckdb`` over ``home/runs``).

    Cheap to construct; nothing is opened until used. Safe to share between threads and to
    use from many processes at once.
    """

    def __init__(self, home: str | os.PathLike, *, timeout: float | None = DEFAULT_TIMEOUT_S):
        self.home = Path(home).expanduser().absolute()
        self.path = self.home / DB_FILE
        self.lock_path = self.home / LOCK_FILE
        self.runs_dir = self.home / RUNS_DIR
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Catalog({str(self.home)!r})"

    # -- connections -------------------------------------------------------------------

    def _held(self) -> duckdb.DuckDBPyConnection | None:
        """This thread's open read-write connection to this file, if it holds one."""
        return _HELD.__dict__.get(self.path)

    @contextmanager
    def write(self, timeout: float | None = -1.0, *,
              upgrade: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """Exclusive lock + read-write connection, migrated to the current schema; closed and
        unlocked on exit. Raises :class:`CatalogBusy` after ``timeout`` (default: the
        catalog's); ``None`` waits as long as it takes."""
        held = self._held()
        if held is not None:
            yield held
            return
        lock = CatalogLock(self.lock_path, timeout=self.timeout)
        lock.acquire(timeout)
        try:
            con = self._connect(upgrade)
            try:
                yield con
            finally:
                self._disconnect(con)
        finally:
            lock.release()

    def _connect(self, upgrade: bool) -> duckdb.DuckDBPyConnection:
        """Open read-write (the exclusive lock must be held) and remember it for nesting."""
        self.home.mkdir(parents=True, exist_ok=True)
        con = _open(self.path)
        _HELD.__dict__[self.path] = con
        try:
            if upgrade and current_version(con) != CURRENT_VERSION:
                migrate(con)  # an unknown newer version raises SchemaError naming the fix
        except BaseException:
            self._disconnect(con)
            raise
        return con

    def _disconnect(self, con: duckdb.DuckDBPyConnection) -> None:
        _HELD.__dict__.pop(self.path, None)
        _close(con)

    @contextmanager
    def read(self, timeout: float | None = -1.0) -> Iterator[duckdb.DuckDBPyConnection]:
        """Shared lock + read-only connection to a catalog at the current schema."""
        held = self._held()
        if held is not None:
            yield held
            return
        for _ in range(2):
            if not self.path.exists():
                with self.write(timeout):
                    pass  # create it, with its schema
            lock = CatalogLock(self.lock_path, shared=True, timeout=self.timeout)
            lock.acquire(timeout)
            try:
                con = _open(self.path, read_only=True)
                try:
                    version = current_version(con)
                    if version == CURRENT_VERSION:
                        yield con
                        return
                finally:
                    _close(con)
            finally:
                lock.release()
            if version > CURRENT_VERSION:
                raise SchemaError(f"{self.path} has schema version {version}, newer than this "
                                  f"tunixrt knows ({CURRENT_VERSION}); upgrade tunixrt or run "
                                  "`tunixrt reindex`")
            with self.write(timeout):
                pass  # older schema: upgrade it, then read
        raise SchemaError(f"{self.path} did not reach schema version {CURRENT_VERSION}")

    # -- ingest / maintenance ----------------------------------------------------------

    def ingest(self, run_ids: Iterable[str] | None = None, *,
               progress: Callable[[IngestStats], None] | None = None,
               timeout: float | None = -1.0) -> IngestStats:
        """Catch the catalog up with the run folders (all, or ``run_ids``); waits for the lock.

        Any process that opens the store calls this, so what a dead supervisor left behind
        is picked up by the next one."""
        with self.write(timeout) as con:
            return ingest_runs(con, self.runs_dir, run_ids, progress=progress)

    ingest_all = ingest

    def try_ingest(self, run_ids: Iterable[str] | None = None) -> bool:
        """Ingest only if the catalog is free right now; False (at once) if it is busy.

        For code that must never stall a run on the catalog: a False means "retry later".
        """
        if (held := self._held()) is not None:
            ingest_runs(held, self.runs_dir, run_ids)
            return True
        lock = CatalogLock(self.lock_path)
        if sessions.exiting() or not lock.try_acquire():
            return False
        try:
            try:
                con = self._connect(True)
            except (duckdb.IOException, CatalogBusy):
                return False  # held by something that ignores our lock, or exiting: retry
            try:
                ingest_runs(con, self.runs_dir, run_ids)
            finally:
                self._disconnect(con)
            return True
        finally:
            lock.release()

    def reindex(self, *, progress: Callable[[IngestStats], None] | None = None,
                timeout: float | None = -1.0) -> IngestStats:
        """Rebuild the catalog from the run folders alone, into a fresh file.

        The new file is built beside the old one and renamed over it under the lock, so a
        crash mid-way leaves the old catalog in place, and a damaged catalog (one DuckDB can no
        longer open) is replaced rather than repaired."""
        if self._held() is not None:
            raise RuntimeError("reindex() cannot run inside Catalog.write()")
        fresh = self.path.with_name(DB_FILE + ".reindex")
        lock = CatalogLock(self.lock_path, timeout=self.timeout)
        lock.acquire(timeout)
        try:
            for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
                leftover.unlink(missing_ok=True)
            self.home.mkdir(parents=True, exist_ok=True)
            con = _open(fresh)
            try:
                migrate(con)
                stats = ingest_runs(con, self.runs_dir, progress=progress)
                con.execute("CHECKPOINT")
            finally:
                _close(con)
            self.path.with_name(DB_FILE + ".wal").unlink(missing_ok=True)
            os.replace(fresh, self.path)
            return stats
        finally:
            lock.release()

    def version(self) -> int:
        """The file's schema version (0 when there is no catalog yet)."""
        if not self.path.exists():
            return 0
        lock = CatalogLock(self.lock_path, shared=True, timeout=self.timeout)
        lock.acquire()
        try:
            con = _open(self.path, read_only=True)
            try:
                return current_version(con)
            finally:
                _close(con)
        finally:
            lock.release()

    def migrate(self, target: int | None = None) -> int:
        """Upgrade or downgrade the file's schema to ``target`` (default: current)."""
        with self.write(upgrade=False) as con:
            return migrate(con, target)

    # -- queries (see queries.py) --------------------------------------------------------

    def list_runs(self, **filters: Any) -> tuple[list[dict[str, Any]], int]:
        """``list_runs(status=, model=, dataset=, mode=, tags=, name=, since=, until=,
        sort="-created_at", limit=20, offset=0) -> (rows, total)``."""
        with self.read() as con:
            return queries.list_runs(con, **filters)

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.read() as con:
            return queries.get_run(con, run_id)

    def metric_series(self, run_id: str, name: str | None = None) -> list[dict[str, Any]]:
        with self.read() as con:
            return queries.metric_series(con, run_id, name)

    def metric_names(self, run_id: str) -> list[str]:
        with self.read() as con:
            return queries.metric_names(con, run_id)

    def logs(self, run_id: str, n: int = 100, stream: str | None = None) -> list[dict[str, Any]]:
        with self.read() as con:
            return queries.logs(con, run_id, n, stream)

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        with self.read() as con:
            return queries.artifacts(con, run_id)

    def transitions(self, run_id: str) -> list[dict[str, Any]]:
        with self.read() as con:
            return queries.transitions(con, run_id)

    def compare(self, run_ids: Iterable[str]) -> list[dict[str, Any]]:
        with self.read() as con:
            return queries.compare(con, list(run_ids))


__all__ = ["Catalog", "CatalogBusy", "IngestStats", "SchemaError"]
