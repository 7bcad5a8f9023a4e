"""The external catalog lock, and a busy catalog that never blocks or fails a caller."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from store_helpers import T0, append_events, env_for_children, make_run, status

from tunixrt_jupyter.store import Catalog, CatalogBusy, CatalogLock

HOLD = """
import sys
from tunixrt_jupyter.store import CatalogLock
lock = CatalogLock(sys.argv[1], shared=sys.argv[2] == "shared")
lock.acquire()
print("held", flush=True)
sys.stdin.readline()  # hold until the parent says so
"""


def _hold(path, mode="exclusive") -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env_for_children())
    assert proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen) -> None:
    proc.communicate("go\n")
    assert proc.returncode == 0


def test_exclusive_and_shared_between_processes(tmp_path):
    path = tmp_path / "history.lock"
    holder = _hold(path)
    try:
        assert not CatalogLock(path).try_acquire()
        assert not CatalogLock(path, shared=True).try_acquire()
        with pytest.raises(CatalogBusy, match="history.lock"):
            CatalogLock(path).acquire(timeout=0.05)
    finally:
        _release(holder)
    reader = _hold(path, "shared")
    try:
        other_reader = CatalogLock(path, shared=True)
        assert other_reader.try_acquire()  # readers share
        other_reader.release()
        assert not CatalogLock(path).try_acquire()  # a writer waits for readers
    finally:
        _release(reader)
    lock = CatalogLock(path)
    assert lock.try_acquire()
    with pytest.raises(RuntimeError):
        lock.try_acquire()
    lock.release()


def test_threads_of_one_process_exclude_each_other(tmp_path):
    """flock, not POSIX record locks: two lock objects in one process still exclude."""
    path = tmp_path / "history.lock"
    first, second = CatalogLock(path), CatalogLock(path)
    first.acquire()
    assert not second.try_acquire()
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (second.acquire(timeout=None), got.set()))
    waiter.start()
    assert not got.is_set()
    first.release()
    waiter.join(timeout=60)
    assert got.is_set() and second.held
    second.release()


def test_busy_catalog_try_ingest_returns_false(tmp_path):
    rid = "20250615-120000-aaaaaa"
    run = make_run(tmp_path, rid)
    append_events(run, [status("pending", T0)])
    cat = Catalog(tmp_path, timeout=0.05)
    holder = _hold(cat.lock_path)
    try:
        assert cat.try_ingest() is False
        with pytest.raises(CatalogBusy):
            cat.ingest()
        with pytest.raises(CatalogBusy):
            cat.list_runs()
    finally:
        _release(holder)
    assert cat.try_ingest() is True
    assert cat.list_runs()[1] == 1


def test_nested_use_in_one_thread_reuses_the_connection(tmp_path):
    rid = "20250615-120000-aaaaaa"
    append_events(make_run(tmp_path, rid), [status("pending", T0)])
    cat = Catalog(tmp_path, timeout=0.05)
    with cat.write():
        assert cat.try_ingest() is True
        assert cat.list_runs()[1] == 1  # a read inside a write: same connection, no deadlock
        assert Catalog(tmp_path, timeout=0.05).get_run(rid)["status"] == "pending"
        with pytest.raises(RuntimeError):
            cat.reindex()
    assert cat.get_run(rid)["status"] == "pending"
