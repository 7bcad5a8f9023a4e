"""Run-list rows read straight from run folders, kept current incrementally.

The server answers ``GET runs`` from the DuckDB catalog when it can, and from here when it
cannot (no catalog module, a catalog error). The ``events`` stream always reads from here:
live views read run folders, never the catalog (docs/architecture.md).

Each run folder gets one cached :class:`~tunixrt_jupyter.live.RunTail` (events only), so a
refresh reads just the bytes appended since the last look; the config is parsed once.
Rows have the catalog's column names so the sidebar treats both sources alike.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ..events import EVENTS_FILE, TERMINAL_STATUSES
from ..home import Home
from ..live import RunTail

ROW_COLUMNS = (
    "run_id", "name", "tags", "model", "dataset", "mode", "executor", "platform", "status",
    "created_at", "started_at", "ended_at", "step", "total_steps", "final_loss",
    "best_eval_loss", "error", "dir", "notes", "duration_s",
)
MAX_CACHED_RUNS = 5000


def jsonable(value: Any) -> Any:
    """JSON the browser can parse: no NaN/inf (kept as strings, as events.jsonl does)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _config_summary(run_dir: Path) -> dict[str, Any]:
    """The row fields that come from config.yaml (tolerant: a bad file gives blanks)."""
    try:
        raw = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        raw = {}
    if not isinstance(raw, dict):
        raw = {}

    def section(key: str) -> dict:
        value = raw.get(key)
        return value if isinstance(value, dict) else {}

    model, dataset, run = section("model"), section("dataset"), section("run")
    model_label = (model.get("id") or (Path(str(model["path"])).name if model.get("path")
                                       else model.get("family")) or "tiny")
    dataset_label = (Path(str(dataset["path"])).name if dataset.get("path")
                     else dataset.get("source")) or "tiny"
    tags = raw.get("tags") if isinstance(raw.get("tags"), list) else []
    total = section("training").get("max_steps")
    return {
        "name": raw.get("name") or f"{model_label}-{dataset_label}",
        "tags": [str(t) for t in tags],
        "model": str(model_label),
        "dataset": str(dataset_label),
        "mode": run.get("mode"),
        "executor": run.get("executor"),
        "notes": raw.get("notes") or "",
        "_max_steps": total if isinstance(total, int) else None,
    }


class _Entry:
    __slots__ = ("tail", "config", "size", "row")

    def __init__(self, run_dir: Path):
        self.tail = RunTail(run_dir, logs=False)
        self.config: dict[str, Any] | None = None
        self.size = -1
        self.row: dict[str, Any] | None = None


def _events_size(run_dir: Path) -> int:
    try:
        return (run_dir / EVENTS_FILE).stat().st_size
    except FileNotFoundError:
        return 0


class FolderRows:
    """Rows for one home's run folders; thread-safe, refreshed only when a file grew."""

    def __init__(self, home: Home):
        self.home = home
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._ids: list[str] = []
        self._ids_mtime: int | None = None

    # -- run ids ---------------------------------------------------------------------------
    def run_ids(self) -> list[str]:
        """All run ids, oldest first; the directory is re-listed only when it changed."""
        with self._lock:
            try:
                mtime = self.home.runs_dir.stat().st_mtime_ns
            except FileNotFoundError:
                self._ids, self._ids_mtime = [], None
                return []
            if mtime != self._ids_mtime:
                self._ids, self._ids_mtime = self.home.run_ids(), mtime
            return list(self._ids)

    def newest_ids(self, limit: int) -> list[str]:
        ids = self.run_ids()
        return ids[::-1][:limit] if limit > 0 else ids[::-1]

    # -- rows ------------------------------------------------------------------------------
    def sizes(self, run_ids: Iterable[str]) -> dict[str, int]:
        """The events.jsonl size per run: the cheap "did anything happen?" probe."""
        return {rid: _events_size(self.home.run_dir(rid)) for rid in run_ids}

    def row(self, run_id: str) -> dict[str, Any] | None:
        """The current row of one run, or None when its folder is gone."""
        run_dir = self.home.run_dir(run_id)
        if not run_dir.is_dir():
            with self._lock:
                self._entries.pop(run_id, None)
            return None
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None:
                entry = self._entries[run_id] = _Entry(run_dir)
                while len(self._entries) > MAX_CACHED_RUNS:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(run_id)
            size = _events_size(run_dir)
            if entry.row is not None and size == entry.size:
                return dict(entry.row)
            if entry.config is None:
                entry.config = _config_summary(run_dir)
            entry.tail.poll()
            entry.size = size
            entry.row = self._build(run_id, run_dir, entry)
            return dict(entry.row)

    def rows(self, run_ids: Iterable[str]) -> list[dict[str, Any]]:
        out = []
        for rid in run_ids:
            row = self.row(rid)
            if row is not None:
                out.append(row)
        return out

    @staticmethod
    def _build(run_id: str, run_dir: Path, entry: _Entry) -> dict[str, Any]:
        st = entry.tail.state
        cfg = dict(entry.config or {})
        max_steps = cfg.pop("_max_steps", None)
        created = st.created_at
        if created is None:
            try:
                created = (run_dir / "config.yaml").stat().st_mtime
            except OSError:
                created = None
        row = {
            "run_id": run_id,
            **cfg,
            "platform": st.platform,
            "status": st.status,
            "created_at": created,
            "started_at": st.started_at,
            "ended_at": st.ended_at,
            "step": st.step,
            "total_steps": st.total or max_steps,
            "final_loss": st.last.get("train/loss"),
            "best_eval_loss": st.best.get("eval/loss"),
            "error": st.error,
            "dir": str(run_dir),
            "duration_s": (st.ended_at - st.started_at
                           if st.ended_at is not None and st.started_at is not None else None),
        }
        return {k: row.get(k) for k in ROW_COLUMNS}

    # -- queries (the catalog's filters, for when there is no catalog) ---------------------
    def query(self, *, status: list[str] | None = None, model: list[str] | None = None,
              dataset: list[str] | None = None, mode: list[str] | None = None,
              tags: list[str] | None = None, name: str | None = None,
              since: float | None = None, until: float | None = None,
              sort: str = "-created_at", limit: int = 50, offset: int = 0,
              ) -> tuple[list[dict[str, Any]], int]:
        rows = self.rows(self.run_ids())

        def keep(r: dict) -> bool:
            if status and r["status"] not in status:
                return False
            if model and r["model"] not in model:
                return False
            if dataset and r["dataset"] not in dataset:
                return False
            if mode and r["mode"] not in mode:
                return False
            if tags and not set(tags) & set(r["tags"] or []):
                return False
            if name and name.lower() not in str(r["name"] or "").lower():
                return False
            t = r["created_at"]
            if since is not None and (t is None or t < since):
                return False
            return not (until is not None and (t is None or t >= until))

        rows = [r for r in rows if keep(r)]
        desc = sort.startswith("-")
        col = sort.lstrip("-+")
        if col not in ROW_COLUMNS:
            raise ValueError(f"cannot sort by {col!r}; columns: {', '.join(ROW_COLUMNS)}")

        def key(r: dict) -> tuple:
            v = r.get(col)
            if isinstance(v, list):
                v = ",".join(map(str, v))
            # None last whichever the direction; then by id so paging is stable
            return (v is None, _sortable(v), r["run_id"])

        present = sorted((r for r in rows if r.get(col) is not None), key=key, reverse=desc)
        missing = sorted((r for r in rows if r.get(col) is None), key=key, reverse=desc)
        ordered = present + missing
        return ordered[offset: offset + limit] if limit > 0 else ordered[offset:], len(rows)


def _sortable(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v) if math.isfinite(float(v)) else math.inf, "")
    return (1, 0.0, str(v) if v is not None else "")


def is_active(row: dict[str, Any]) -> bool:
    return row.get("status") not in TERMINAL_STATUSES


_CACHES: dict[Path, FolderRows] = {}
_CACHES_LOCK = threading.Lock()


def folder_rows(home: Home) -> FolderRows:
    """The process-wide row cache of one home."""
    with _CACHES_LOCK:
        cache = _CACHES.get(home.root)
        if cache is None:
            cache = _CACHES[home.root] = FolderRows(home)
        return cache


def clear_caches() -> None:
    with _CACHES_LOCK:
        _CACHES.clear()


__all__ = ["FolderRows", "folder_rows", "jsonable", "is_active", "ROW_COLUMNS"]
