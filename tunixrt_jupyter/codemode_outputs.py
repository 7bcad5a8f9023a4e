"""``--out`` variables: from the run folder's ``outputs/`` into the notebook's Run handles.

The executor fills every handle registered for the run (the one ``%%tunix_run --code``
returned) *before* it records ``completed``, so ``run.wait(); run.outputs`` always sees
them. :func:`load_outputs` reads them back later for any handle (``%tunix_show``).
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

from .codemode_runtime import OUTPUTS_DIR, read_pickles
from .events import append_event

_handles: dict[str, weakref.WeakSet] = {}
_lock = threading.Lock()


def register_handle(run: Any) -> None:
    with _lock:
        _handles.setdefault(run.id, weakref.WeakSet()).add(run)


def deliver(run_dir: Path, values: dict[str, Any]) -> None:
    """Put ``values`` into ``outputs`` of every live handle registered for the run."""
    with _lock:
        runs = list(_handles.pop(Path(run_dir).name, ()))
    for run in runs:
        run.outputs.update(values)


def record_saved(run_dir: Path, saved: list[dict], problems: dict[str, str], sink: Any) -> None:
    """Artifact events for saved outputs, a warning line for each that could not be saved."""
    for item in saved:
        append_event(run_dir, "artifact", name=item["name"], path=item["path"], kind="output",
                     bytes=item.get("bytes"))
    for name, why in problems.items():
        sink.line("stderr", f"tunixrt: warning: --out variable {name!r} was not saved: {why}")


def deliver_saved_outputs(run_dir: Path, dumped: dict | None, sink: Any) -> dict[str, Any]:
    """After a kernel run: record what was saved, unpickle it here, fill the handles."""
    dumped = dumped or {}
    record_saved(run_dir, dumped.get("saved", []), dumped.get("problems", {}), sink)
    values, problems = read_pickles(run_dir, OUTPUTS_DIR)
    for name, why in problems.items():
        sink.line("stderr", f"tunixrt: warning: --out variable {name!r} could not be loaded "
                            f"in the notebook: {why}")
    deliver(run_dir, values)
    return values


def load_outputs(run: Any) -> dict[str, Any]:
    """A run's saved ``--out`` variables (also stored into ``run.outputs``)."""
    values, _ = read_pickles(run.dir, OUTPUTS_DIR)
    run.outputs.update(values)
    return values
