"""A process may end while a background thread is inside a catalog session."""

from __future__ import annotations

import subprocess
import sys

from store_helpers import env_for_children

CHILD = """
import sys, threading
from tunixrt_jupyter.store import Catalog
cat = Catalog(sys.argv[1])
inside = threading.Event()

def work():
    with cat.write() as con:
        inside.set()
        con.execute("SELECT sum(range) FROM range(1500000000)").fetchone()

threading.Thread(target=work, daemon=True).start()
inside.wait()
print("main thread ends while the daemon thread runs a query", flush=True)
"""


def test_exit_waits_for_a_daemon_threads_session(tmp_path):
    """Without the exit drain this aborts: "FATAL: exception not rethrown" (rc -6)."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True,
                          text=True, env=env_for_children(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "main thread ends" in proc.stdout


REFUSE = """
import sys
from tunixrt_jupyter.store import Catalog, CatalogBusy, sessions
cat = Catalog(sys.argv[1])
cat.ingest()
assert sessions.drain() is True  # what atexit runs: nothing open, so at once
assert cat.try_ingest() is False
try:
    cat.list_runs()
except CatalogBusy as exc:
    print("refused:", exc)
"""


def test_sessions_refused_once_exiting(tmp_path):
    proc = subprocess.run([sys.executable, "-c", REFUSE, str(tmp_path)], capture_output=True,
                          text=True, env=env_for_children(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "refused: the catalog is closed: this process is exiting" in proc.stdout
