"""Run-folder contents -> catalog rows, and the run's summary folded from its events.

The summary (status, times, step, losses, error) is folded event by event with a state that
lives in the ``runs`` row itself, so ingesting a file in one piece or in a hundred chunks
gives the same row, and each chunk's transaction can store the summary as of its offsets.

Rows are gathered column-wise in a :class:`Batch` and handed to DuckDB as Arrow tables:
measured, one ``INSERT ... SELECT`` from Arrow is 400-1000x faster than ``executemany``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from ..events import TERMINAL_STATUSES

SCHEMAS: dict[str, pa.Schema] = {
    "metrics": pa.schema([("run_id", pa.string()), ("name", pa.string()),
                          ("step", pa.int64()), ("value", pa.float64()), ("t", pa.float64())]),
    "logs": pa.schema([("run_id", pa.string()), ("seq", pa.int64()), ("t", pa.float64()),
                       ("stream", pa.string()), ("line", pa.string())]),
    "status_transitions": pa.schema([("run_id", pa.string()), ("status", pa.string()),
                                     ("t", pa.float64()), ("reason", pa.string()),
                                     ("detail", pa.string())]),
    "artifacts": pa.schema([("run_id", pa.string()), ("name", pa.string()),
                            ("kind", pa.string()), ("path", pa.string()),
                            ("bytes", pa.int64()), ("t", pa.float64())]),
}
RUN_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("name", pa.string()), ("tags", pa.list_(pa.string())),
    ("model", pa.string()), ("dataset", pa.string()), ("mode", pa.string()),
    ("executor", pa.string()), ("platform", pa.string()), ("status", pa.string()),
    ("created_at", pa.float64()), ("started_at", pa.float64()), ("ended_at", pa.float64()),
    ("step", pa.int64()), ("total_steps", pa.int64()), ("final_loss", pa.float64()),
    ("best_eval_loss", pa.float64()), ("error", pa.string()), ("dir", pa.string()),
    ("config_json", pa.string()), ("notes", pa.string()), ("duration_s", pa.float64()),
])
RUN_COLUMNS = tuple(RUN_SCHEMA.names)
_STATUS_KEYS = frozenset({"t", "type", "status", "reason"})


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # also "nan"/"inf", which the event writer stores as strings
    except (TypeError, ValueError):
        return None


_INT64 = range(-(2**63), 2**63)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number in _INT64 else None


def clean_text(value: Any) -> str | None:
    """Text for a VARCHAR column; JSON can carry lone surrogates (``"\\ud800"``), which Arrow
    refuses, and one bad event must never stop a run's ingest."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    return text


def to_json(value: Any) -> str:
    """Strict JSON text (DuckDB's JSON functions reject ``NaN``); odd keys/values as text."""
    try:
        text = json.dumps(value, default=str, allow_nan=False, sort_keys=True,
                          ensure_ascii=False)
    except (TypeError, ValueError):
        text = json.dumps(_plain(value), default=str, sort_keys=True, ensure_ascii=False)
    return clean_text(text)  # a lone surrogate escaped as \ud800 is invalid JSON for DuckDB


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def new_summary(run_id: str, run_dir: str) -> dict[str, Any]:
    """An empty ``runs`` row; ``created_at`` falls back to the time in the run id."""
    row: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    row.update(run_id=run_id, dir=run_dir, tags=[], created_at=run_id_time(run_id))
    return row


def run_id_time(run_id: str) -> float | None:
    """``YYYYMMDD-HHMMSS-xxxxxx`` -> unix seconds (UTC), or None for another shape."""
    try:
        stamp = datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return None
    return stamp.replace(tzinfo=timezone.utc).timestamp()


def apply_config(row: dict[str, Any], cfg: dict[str, Any]) -> None:
    """Copy what the runs table shows from a run's resolved ``config.yaml``."""
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    dataset = cfg.get("dataset") if isinstance(cfg.get("dataset"), dict) else {}
    run = cfg.get("run") if isinstance(cfg.get("run"), dict) else {}
    model_label = (model.get("id") or (os.path.basename(str(model["path"]))
                                      if model.get("path") else None) or model.get("family"))
    dataset_label = (os.path.basename(str(dataset["path"])) if dataset.get("path")
                     else dataset.get("source"))
    if run.get("kind") == "code":  # the model and data are whatever the user's cell built
        model_label = dataset_label = "code"
    tags = cfg.get("tags")
    if isinstance(tags, (str, int, float)):
        tags = [tags]
    tags = [clean_text(t) for t in tags] if isinstance(tags, (list, tuple)) else []
    row.update(
        name=clean_text(cfg.get("name")) or f"{model_label}-{dataset_label}",
        tags=tags, model=clean_text(model_label), dataset=clean_text(dataset_label),
        mode=clean_text(run.get("mode")), executor=clean_text(run.get("executor")),
        notes=clean_text(cfg.get("notes")) or None,
        config_json=to_json(cfg),
    )
    if row.get("platform") is None and run.get("platform") not in (None, "auto"):
        row["platform"] = clean_text(run.get("platform"))


class Batch:
    """Rows for one transaction (tuples per table), plus the runs rows and offsets it commits.

    Rows are kept as tuples and turned into columns once per batch (``zip(*rows)`` runs in C),
    which measured ~3x faster than appending to one list per column for every row.
    """

    def __init__(self) -> None:
        self.data: dict[str, list[tuple]] = {name: [] for name in SCHEMAS}
        self.runs: dict[str, dict[str, Any]] = {}
        self.offsets: dict[tuple[str, str], int] = {}

    @property
    def rows(self) -> int:
        return sum(map(len, self.data.values()))

    def add(self, table: str, *values: Any) -> None:
        self.data[table].append(values)

    def extend(self, table: str, rows: Iterable[tuple]) -> None:
        self.data[table].extend(rows)

    def tables(self) -> dict[str, pa.Table]:
        out = {}
        for name, rows in self.data.items():
            if rows:
                schema = SCHEMAS[name]
                columns = zip(*rows, strict=True)  # rows -> columns
                arrays = [pa.array(col, type=field.type)
                          for col, field in zip(columns, schema, strict=True)]
                out[name] = pa.Table.from_arrays(arrays, schema=schema)
        return out

    def runs_table(self) -> pa.Table:
        return pa.Table.from_pylist(list(self.runs.values()), schema=RUN_SCHEMA)

    def __len__(self) -> int:
        return self.rows + len(self.runs) + len(self.offsets)


def apply_event(row: dict[str, Any], ev: dict[str, Any], batch: Batch, seq: int) -> int:
    """Fold one event into ``row`` and add its rows to ``batch``; returns the next log seq."""
    run_id = row["run_id"]
    kind = ev.get("type")
    t = _float(ev.get("t"))
    if kind == "metric":
        name = (clean_text(ev.get("name")) or "").lstrip("/")
        value = _float(ev.get("value"))
        if not name or value is None:
            return seq
        batch.add("metrics", run_id, name, _int(ev.get("step")), value, t)
        if name == "train/loss":
            row["final_loss"] = value
        elif name == "eval/loss" and not math.isnan(value):
            best = row["best_eval_loss"]
            row["best_eval_loss"] = value if best is None or value < best else best
    elif kind == "log":
        batch.add("logs", run_id, seq, log_time(row, t), clean_text(ev.get("stream")) or "stdout",
                  clean_text(ev.get("line")) or "")
        return seq + 1
    elif kind == "progress":
        step, total = _int(ev.get("step")), _int(ev.get("total"))
        if step is not None:
            row["step"] = step
        if total is not None:
            row["total_steps"] = total
    elif kind == "status":
        _apply_status(row, ev, t, batch)
    elif kind in ("artifact", "checkpoint"):
        path = clean_text(ev.get("path"))
        if kind == "checkpoint":
            step = _int(ev.get("step"))
            name = ev.get("name") or (f"checkpoint-{step}" if step is not None else path)
        else:
            name = ev.get("name") or (os.path.basename(path) if path else None)
        batch.add("artifacts", run_id, clean_text(name), clean_text(ev.get("kind")) or kind, path,
                  _int(ev.get("bytes")), t)
    elif kind == "error":
        if row["error"] is None:
            row["error"] = clean_text(ev.get("message")) or "error"
    elif kind == "info" and ev.get("key") == "platform" and ev.get("value"):
        row["platform"] = clean_text(ev["value"])
    return seq


def _apply_status(row: dict[str, Any], ev: dict[str, Any], t: float | None,
                  batch: Batch) -> None:
    status = clean_text(ev.get("status"))
    detail = {k: v for k, v in ev.items() if k not in _STATUS_KEYS}
    batch.add("status_transitions", row["run_id"], status, t, clean_text(ev.get("reason")),
              to_json(detail) if detail else None)
    if row["status"] in TERMINAL_STATUSES:  # the first terminal status wins
        return
    row["status"] = status
    if status == "running" and row["started_at"] is None:
        row["started_at"] = t
    if status in TERMINAL_STATUSES:
        row["ended_at"] = t
        if row["started_at"] is not None and t is not None:
            row["duration_s"] = t - row["started_at"]
    if ev.get("error"):
        row["error"] = clean_text(ev["error"])
    if ev.get("platform"):
        row["platform"] = clean_text(ev["platform"])


def log_time(row: dict[str, Any], t: Any) -> float:
    """A log row's time: the event's, else the run's creation (never NULL, so the per-run
    time span kept for ``logs()`` covers every line)."""
    value = _float(t)
    if value is None or not math.isfinite(value):
        value = row["created_at"] if row["created_at"] is not None else 0.0
    return value
