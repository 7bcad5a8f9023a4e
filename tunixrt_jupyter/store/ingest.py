"""Incremental, idempotent ingest of run folders into the catalog.

Each run folder is read from the byte offsets stored in ``ingest_offsets``, only up to the
last ``\\n`` of each file (a line still being written waits for the next ingest). The rows,
the run's recomputed summary row and the new offsets are committed in ONE transaction, so a
process killed at any point leaves either all of a batch or none of it: nothing is lost and
nothing is counted twice when the next process catches up.

Cheap when nothing changed: one query loads the offsets of the runs not sealed, a run is
skipped when its files' sizes equal its offsets, and a run that ended more than
``SEAL_AFTER_S`` ago and was fully ingested is "sealed" and skipped without even a ``stat``
(unless asked for by id), so opening a store with thousands of old runs costs little more
than a directory listing (measured: ~60-150 ms with 2,000 sealed runs, mostly the connect).

Bookkeeping rows in ``ingest_offsets`` use pseudo file names: ``#seq`` (the next log line
number of the run, so log order survives across batches), ``#sealed``, and ``#log_tmin`` /
``#log_tmax`` (whole seconds bounding the ``t`` of the run's log rows: ``logs()`` filters on
them so DuckDB can skip other runs' row groups by their min/max ``t``; measured at 50M lines,
a run's last 500 lines took 65 ms by run id alone and 3-4 ms with the time range).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml

from ..events import TERMINAL_STATUSES
from .records import Batch, apply_config, apply_event, clean_text, log_time, new_summary

CONFIG_FILE = "config.yaml"
EVENTS_FILE = "events.jsonl"
LOG_FILES = {"stdout.log": "stdout", "stderr.log": "stderr"}
DATA_FILES = (EVENTS_FILE, *LOG_FILES)
SEQ_KEY = "#seq"
SEALED_KEY = "#sealed"
LOG_TMIN_KEY, LOG_TMAX_KEY = "#log_tmin", "#log_tmax"
SEAL_AFTER_S = 60.0  # a terminal run's folder may still get its last output lines for a moment
CHUNK_BYTES = 8 << 20  # per file per read: bounds memory on a huge backlog
BATCH_ROWS = 200_000  # rows per transaction (measured: Arrow inserts plateau above ~1k rows)
_OFFSETS_SCHEMA = pa.schema([("run_id", pa.string()), ("file", pa.string()),
                             ("offset", pa.int64())])


@dataclass
class IngestStats:
    """What one ingest call did."""

    runs: int = 0  # runs that had something new
    events: int = 0
    log_lines: int = 0
    bytes: int = 0
    transactions: int = 0
    skipped: int = 0  # runs looked at and found unchanged (sealed runs are not counted)


def read_complete(path: Path, offset: int, limit: int) -> tuple[bytes, int, bool]:
    """Complete lines of ``path`` from ``offset``: (data, new offset, maybe more to read)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return b"", offset, False
    with f:
        f.seek(offset)
        data = f.read(limit)
        more = len(data) == limit
        while more and b"\n" not in data:  # one line longer than the chunk: read on
            extra = f.read(limit)
            data += extra
            more = len(extra) == limit
    end = data.rfind(b"\n")
    if end < 0:
        return b"", offset, False
    return data[: end + 1], offset + end + 1, more


def parse_events(data: bytes) -> list[dict[str, Any]]:
    """The event records in ``data`` (complete lines); blank, torn or non-object lines skipped.

    Parses the whole chunk as one JSON array first (one C call, measured ~2x faster than a
    ``json.loads`` per line) and falls back to line by line only when a line is bad.
    """
    lines = [line for line in data.split(b"\n") if line.strip()]
    try:
        records = json.loads(b"[" + b",".join(lines) + b"]")
        if len(records) == len(lines):  # a line holding "1, 2" would parse as two values
            return [r for r in records if isinstance(r, dict)]
    except ValueError:
        pass
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = _after_torn(line)
        if isinstance(record, dict):
            records.append(record)
    return records


def _after_torn(line: bytes) -> Any:
    """A writer killed mid-line leaves no ``\\n``, so the next writer's whole record follows
    the torn piece on the same line: keep that record, drop the torn piece."""
    start = line.rfind(b'{"t": ', 1)
    if start > 0:
        try:
            return json.loads(line[start:])
        except ValueError:
            pass
    return None  # unreadable: skip it, never fail the reader


def _valid_id(run_id: str) -> bool:
    """A folder name usable as a run id: no path tricks, no undecodable bytes (which Python
    hands over as lone surrogates, and which would fail the whole batch's insert)."""
    return (bool(run_id) and not run_id.startswith(".") and "/" not in run_id
            and run_id.isprintable() and run_id == clean_text(run_id))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def _load_state(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, dict[str, int]]:
    if not ids:
        return {}
    rows = con.execute('SELECT run_id, file, "offset" FROM ingest_offsets '
                       "WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [ids]).fetchall()
    state: dict[str, dict[str, int]] = {}
    for run_id, file, offset in rows:
        state.setdefault(run_id, {})[file] = offset
    return state


def _load_rows(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    cur = con.execute("SELECT * FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
    names = [d[0] for d in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def _has_work(run_dir: Path, offsets: dict[str, int]) -> bool:
    config_size = _size(run_dir / CONFIG_FILE)
    if config_size > 0 and config_size != offsets.get(CONFIG_FILE):
        return True
    return any(_size(run_dir / f) > offsets.get(f, 0) for f in DATA_FILES)


def _sealable(row: dict[str, Any] | None, now: float) -> bool:
    return (row is not None and row["status"] in TERMINAL_STATUSES
            and row["ended_at"] is not None and now - row["ended_at"] > SEAL_AFTER_S)


def ingest_runs(con: duckdb.DuckDBPyConnection, runs_dir: str | os.PathLike,
                run_ids: Iterable[str] | None = None, *,
                progress: Callable[[IngestStats], None] | None = None,
                chunk_bytes: int = CHUNK_BYTES, batch_rows: int = BATCH_ROWS) -> IngestStats:
    """Ingest what is new in ``runs_dir/<run_id>/`` (all runs, or ``run_ids``).

    ``con`` must be a read-write connection held under the catalog lock. ``progress`` is
    called after every commit (e.g. a progress bar for a large reindex).
    """
    runs_dir = Path(runs_dir)
    explicit = run_ids is not None
    if explicit:
        ids = sorted(i for i in set(run_ids) if _valid_id(i))
    else:
        try:
            ids = sorted(e.name for e in os.scandir(runs_dir) if e.is_dir() and _valid_id(e.name))
        except FileNotFoundError:
            ids = []
    if not explicit:  # sealed runs: not even their offsets are loaded
        sealed = {r[0] for r in con.execute(
            "SELECT run_id FROM ingest_offsets WHERE file = ?", [SEALED_KEY]).fetchall()}
        ids = [i for i in ids if i not in sealed]
    state = _load_state(con, ids)
    stats = IngestStats()
    work = [i for i in ids if _has_work(runs_dir / i, state.get(i, {}))]
    stats.skipped = len(ids) - len(work)
    todo, counted = set(work), set()
    known = _load_rows(con, ids)
    now = time.time()
    batch = Batch()
    for run_id in ids:  # unchanged, long-finished runs: seal them, no reading needed
        offsets = state.get(run_id, {})
        if run_id not in todo and SEALED_KEY not in offsets and _sealable(known.get(run_id), now):
            batch.offsets[(run_id, SEALED_KEY)] = 0
    for run_id in work:
        row = known.get(run_id) or new_summary(run_id, str(runs_dir / run_id))
        offsets = dict(state.get(run_id, {}))
        more = True
        while more:
            before = dict(offsets)
            more = _read_chunk(runs_dir / run_id, row, offsets, batch, stats, chunk_bytes)
            if offsets == before:  # only a line still being written: nothing to commit
                stats.skipped += 1
                break
            if run_id not in counted:
                counted.add(run_id)
                stats.runs += 1
            batch.runs[run_id] = row
            for file, offset in offsets.items():
                batch.offsets[(run_id, file)] = offset
            if not more and _sealable(row, now):
                batch.offsets[(run_id, SEALED_KEY)] = 0
            if batch.rows >= batch_rows:
                _commit(con, batch, stats, progress)
                batch = Batch()
    if len(batch):
        _commit(con, batch, stats, progress)
    return stats


def _read_chunk(run_dir: Path, row: dict[str, Any], offsets: dict[str, int], batch: Batch,
                stats: IngestStats, chunk_bytes: int) -> bool:
    """Read one chunk of each file of one run into ``batch``; True if more is left."""
    _read_config(run_dir, row, offsets)
    more = False
    seq = offsets.get(SEQ_KEY, 0)
    start = offsets.get(EVENTS_FILE, 0)
    data, end, more_events = read_complete(run_dir / EVENTS_FILE, start, chunk_bytes)
    more |= more_events
    first = True
    for ev in parse_events(data):
        if first and start == 0 and isinstance(ev.get("t"), (int, float)):
            row["created_at"] = float(ev["t"])  # the run's first event: its creation
        first = False
        seq = apply_event(row, ev, batch, seq)
        if ev.get("type") == "log":
            _widen_log_span(offsets, log_time(row, ev.get("t")))
        stats.events += 1
    if end != start:
        stats.bytes += end - start
        offsets[EVENTS_FILE] = end
    for file, stream in LOG_FILES.items():
        path = run_dir / file
        start = offsets.get(file, 0)
        data, end, more_lines = read_complete(path, start, chunk_bytes)
        more |= more_lines
        if not data:
            continue
        t = path.stat().st_mtime  # raw lines carry no time: their file's last write
        _widen_log_span(offsets, t)
        lines = data.decode("utf-8", errors="replace").split("\n")[:-1]
        n = len(lines)
        batch.extend("logs", zip(repeat(row["run_id"], n), range(seq, seq + n), repeat(t, n),
                                 repeat(stream, n), lines, strict=True))
        seq += n
        stats.log_lines += n
        stats.bytes += end - start
        offsets[file] = end
    if seq != offsets.get(SEQ_KEY, 0):
        offsets[SEQ_KEY] = seq
    return more


def _widen_log_span(offsets: dict[str, int], t: float) -> None:
    low, high = math.floor(t), math.ceil(t)
    if offsets.get(LOG_TMIN_KEY, low) >= low:
        offsets[LOG_TMIN_KEY] = low
    if offsets.get(LOG_TMAX_KEY, high) <= high:
        offsets[LOG_TMAX_KEY] = high


def _read_config(run_dir: Path, row: dict[str, Any], offsets: dict[str, int]) -> None:
    """(Re)read config.yaml when its size differs from the one last read."""
    path = run_dir / CONFIG_FILE
    size = _size(path)
    if size <= 0 or size == offsets.get(CONFIG_FILE):
        return
    try:
        data = path.read_bytes()
        cfg = yaml.safe_load(data)
    except (OSError, yaml.YAMLError):
        return  # being written right now: the next ingest reads it
    if isinstance(cfg, dict):
        apply_config(row, cfg)
        offsets[CONFIG_FILE] = len(data)


def _commit(con: duckdb.DuckDBPyConnection, batch: Batch, stats: IngestStats,
            progress: Callable[[IngestStats], None] | None) -> None:
    """Rows, summary rows and offsets of ``batch`` in one transaction."""
    tables = batch.tables()
    offsets = pa.Table.from_pydict(
        {"run_id": [k[0] for k in batch.offsets], "file": [k[1] for k in batch.offsets],
         "offset": list(batch.offsets.values())}, schema=_OFFSETS_SCHEMA)
    con.execute("BEGIN TRANSACTION")
    try:
        for name, table in tables.items():
            _insert(con, f"INSERT INTO {name} BY NAME SELECT * FROM {{src}}", table)
        if batch.runs:
            _insert(con, "INSERT OR REPLACE INTO runs BY NAME SELECT * FROM {src}",
                    batch.runs_table())
        if batch.offsets:
            _insert(con, "INSERT OR REPLACE INTO ingest_offsets BY NAME SELECT * FROM {src}",
                    offsets)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    stats.transactions += 1
    if progress is not None:
        progress(stats)


def _insert(con: duckdb.DuckDBPyConnection, sql: str, table: pa.Table) -> None:
    view = "_tunixrt_ingest_src"
    con.register(view, table)  # (a failed insert leaves it registered: the next one replaces it)
    con.execute(sql.format(src=view))
    con.unregister(view)
