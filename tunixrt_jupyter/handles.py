"""The handles users hold: :class:`Run` (one run) and :class:`RunList` (a history query).

A Run reads its own folder for anything live (status, metrics, artifacts), so it is
always current and works with no catalog at all; history-wide questions go to the catalog.
"""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path
from typing import Any

from .config import RunConfig, load_config
from .events import TERMINAL_STATUSES, current_status, iter_events
from .home import Home
from .live import RunState

WAIT_POLL_S = 0.1


def _records(rows: list[dict], columns: list[str]) -> Any:
    """A DataFrame when pandas is installed (same columns even when empty), else the dicts."""
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows, columns=columns)


class Run:
    """One run, identified by its folder under ``$TUNIXRT_HOME/runs``."""

    def __init__(self, run_dir: str | Path, home: Home | None = None):
        self.dir = Path(run_dir)
        self.home = home or Home(self.dir.parent.parent)
        self.outputs: dict[str, Any] = {}

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def short_id(self) -> str:
        return self.id.rsplit("-", 1)[-1]

    @cached_property
    def config(self) -> RunConfig:
        return load_config(self.dir / "config.yaml")

    @property
    def name(self) -> str:
        return self.config.display_name

    @property
    def status(self) -> str | None:
        return current_status(self.dir)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def state(self) -> RunState:
        """Fold the whole event file into the run's current state."""
        state = RunState()
        for ev in iter_events(self.dir):
            state.apply(ev)
        return state

    def wait(self, timeout: float | None = None) -> str | None:
        """Block until the run reaches a final status (or ``timeout`` seconds pass)."""
        from .control import is_lost, reconcile_lost
        from .supervisor import supervised_execution

        deadline = None if timeout is None else time.monotonic() + timeout
        checked_lost = 0.0
        while True:
            status = self.status
            if status in TERMINAL_STATUSES:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                return status
            now = time.monotonic()
            if (now - checked_lost > 2.0 and supervised_execution(self.home, self.id) is None
                    and is_lost(self.dir)):
                reconcile_lost(self.home, [self.id])
            checked_lost = now if now - checked_lost > 2.0 else checked_lost
            time.sleep(WAIT_POLL_S)

    def cancel(self, *, wait: bool = True) -> str | None:
        """Cancel: a pending run at once; a running one by SIGTERM, grace period, SIGKILL."""
        from .control import cancel_run

        return cancel_run(self.home, self.dir, "cancelled",
                          grace_s=self.config.run.grace_s, wait=wait)

    def resume(self, *, wait: bool = False, **overrides: Any) -> Run:
        """Start a new run from this run's latest checkpoint (e.g. ``max_steps=80``)."""
        from .api import resume

        return resume(self, wait=wait, **overrides)

    def metrics(self, name: str | None = None) -> Any:
        """Metric points (``name`` like ``"train/loss"``); a DataFrame when pandas is present."""
        name = name.lstrip("/") if name else None
        rows = [
            {"name": ev["name"], "step": ev.get("step"), "value": ev.get("value"), "t": ev["t"]}
            for ev in iter_events(self.dir)
            if ev.get("type") == "metric" and (name is None or ev.get("name") == name)
        ]
        return _records(rows, ["name", "step", "value", "t"])

    def artifacts(self) -> list[dict]:
        """Files the run produced (manifest, checkpoints, outputs): name, kind, path, bytes."""
        return [
            {"name": ev.get("name"), "kind": ev.get("kind", "file"), "path": ev.get("path"),
             "bytes": ev.get("bytes"), "t": ev.get("t")}
            for ev in iter_events(self.dir) if ev.get("type") == "artifact"
        ]

    def logs(self, n: int = 100, stream: str | None = None) -> list[str]:
        """The last ``n`` output lines (stderr lines marked ``[stderr]`` when mixing streams)."""
        from .logtail import tail_run_logs

        return tail_run_logs(self.dir, n, stream)

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self.name!r}, status={self.status!r})"


class RunList:
    """The result of a history query: rows plus the total count before paging."""

    def __init__(self, rows: list[dict], total: int, home: Home, query: dict | None = None):
        self.rows, self.total, self.home, self.query = rows, total, home, query or {}

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return (Run(self.home.run_dir(r["run_id"]), self.home) for r in self.rows)

    def __getitem__(self, i: int) -> Run:
        return Run(self.home.run_dir(self.rows[i]["run_id"]), self.home)

    @property
    def ids(self) -> list[str]:
        return [r["run_id"] for r in self.rows]

    def df(self) -> Any:
        """The rows as a pandas DataFrame (``pip install pandas`` if missing)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("RunList.df() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.rows)

    def __repr__(self) -> str:
        return f"RunList({len(self.rows)} of {self.total} runs)"
