"""Let DuckDB sessions in background threads finish before the interpreter exits.

Why: the supervisor ingests from a daemon thread. When the main thread ends (a CLI command,
a script) while that thread is inside DuckDB, CPython stops the daemon thread as it
re-enters Python, by a forced unwind through DuckDB's C++ frames, whose ``catch (...)``
swallows it: the process aborts with "FATAL: exception not rethrown" (seen in the CLI tests).
An ``atexit`` hook runs while daemon threads are still alive, so it waits for open sessions
to close and refuses new ones; a refused caller gets :class:`CatalogBusy`, which callers
already treat as "try later".
"""

from __future__ import annotations

import atexit
import threading

from .lock import CatalogBusy

EXIT_WAIT_S = 30.0

_cond = threading.Condition()
_active = 0
_exiting = False


def enter() -> None:
    """Count a DuckDB session as open; refused once the process is exiting."""
    global _active
    with _cond:
        if _exiting:
            raise CatalogBusy("the catalog is closed: this process is exiting")
        _active += 1


def leave() -> None:
    global _active
    with _cond:
        _active -= 1
        _cond.notify_all()


def exiting() -> bool:
    return _exiting


def drain(timeout: float = EXIT_WAIT_S) -> bool:
    """Refuse new sessions and wait for open ones to close; True when none is left."""
    global _exiting
    with _cond:
        _exiting = True
        return _cond.wait_for(lambda: _active == 0, timeout=timeout)


atexit.register(drain)
