"""History queries over an open catalog connection; every function returns plain dicts/lists.

Filters are built as SQL with parameters only (no value is ever pasted into SQL); the one
identifier that is (the sort column) is checked against :data:`SORTABLE` first.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import duckdb

from .ingest import LOG_TMAX_KEY, LOG_TMIN_KEY
from .records import RUN_COLUMNS

SORTABLE = tuple(c for c in RUN_COLUMNS if c not in ("tags", "config_json"))
LIST_COLUMNS = tuple(c for c in RUN_COLUMNS if c != "config_json")
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_STAT_KEYS = ("last", "min", "max", "count", "last_step")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _values(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else [str(v) for v in value]
    return values or None


def to_unix(value: Any) -> float:
    """A time filter value -> unix seconds: a number, datetime/date, ISO text, or an age such
    as ``"30m"``, ``"2d"`` (that long ago)."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).timestamp()
    if isinstance(value, str):
        m = _RELATIVE.match(value)
        if m:
            return time.time() - float(m.group(1)) * _UNITS[m.group(2)]
        try:
            return datetime.fromisoformat(value.strip()).timestamp()
        except ValueError:
            pass
    raise ValueError(f"not a time: {value!r}; give unix seconds, a datetime, ISO text like "
                     "'2025-01-31' or '2025-01-31T12:00', or an age like '30m', '12h', '2d'")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _in(expr: str, values: list[str], params: list[Any]) -> str:
    params.extend(values)
    return f"{expr} IN ({', '.join('?' * len(values))})"


def _order(sort: str) -> str:
    desc = sort.startswith("-")
    field = sort.lstrip("+-").strip()
    if field not in SORTABLE:
        raise ValueError(f"cannot sort runs by {field!r}; sort by one of: "
                         f"{', '.join(SORTABLE)} (prefix '-' for descending)")
    direction = "DESC" if desc else "ASC"
    return f"ORDER BY {field} {direction} NULLS LAST, run_id {direction}"


def list_runs(con: duckdb.DuckDBPyConnection, *, status=None, model=None, dataset=None,
              mode=None, tags=None, name=None, since=None, until=None,
              sort: str = "-created_at", limit: int | None = 20,
              offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Runs matching every given filter (several values of one filter = OR); (rows, total).

    ``model`` matches the model label or family, ``dataset`` the dataset label or source,
    ``name`` is a case-insensitive substring, ``tags`` matches runs having any of them,
    ``since``/``until`` bound ``created_at`` (see :func:`to_unix`). ``total`` counts all
    matching runs before ``limit``/``offset``.
    """
    order = _order(sort)
    if limit is not None and limit < 0 or offset < 0:
        raise ValueError("limit and offset must be >= 0")
    where: list[str] = []
    params: list[Any] = []
    if values := _values(status):
        where.append(_in("status", values, params))
    if values := _values(mode):
        where.append(_in("mode", values, params))
    if values := _values(model):
        lowered = [v.lower() for v in values]
        where.append(f"({_in('lower(model)', lowered, params)} OR "
                     f"{_in(_json('model.family'), lowered, params)})")
    if values := _values(dataset):
        lowered = [v.lower() for v in values]
        where.append(f"({_in('lower(dataset)', lowered, params)} OR "
                     f"{_in(_json('dataset.source'), lowered, params)} OR "
                     f"{_in(_json('dataset.path'), lowered, params)})")
    if values := _values(tags):
        where.append("list_has_any(tags, ?::VARCHAR[])")
        params.append(values)
    if values := _values(name):
        where.append("(" + " OR ".join("name ILIKE ? ESCAPE '\\'" for _ in values) + ")")
        params.extend(_like(v) for v in values)
    if since is not None:
        where.append("created_at >= ?")
        params.append(to_unix(since))
    if until is not None:
        where.append("created_at <= ?")
        params.append(to_unix(until))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = con.execute(f"SELECT count(*) FROM runs {clause}", params).fetchone()[0]
    page = "" if limit is None else f"LIMIT {int(limit)}"
    cur = con.execute(f"SELECT {', '.join(LIST_COLUMNS)} FROM runs {clause} {order} {page} "
                      f"OFFSET {int(offset)}", params)
    return _dicts(cur), total


def _json(path: str) -> str:
    return f"lower(json_extract_string(config_json, '$.{path}'))"


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def resolve(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """The runs row of ``run_id``, or of the one run whose id starts (or ends) with it."""
    cur = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id])
    rows = _dicts(cur)
    if not rows and run_id:
        cur = con.execute("SELECT * FROM runs WHERE starts_with(run_id, ?) OR suffix(run_id, ?) "
                          "ORDER BY run_id LIMIT 6", [run_id, run_id])
        rows = _dicts(cur)
    if not rows:
        raise KeyError(f"no run {run_id!r} in the catalog; list runs with `tunixrt runs`")
    if len(rows) > 1:
        some = ", ".join(r["run_id"] for r in rows[:5])
        raise KeyError(f"run id {run_id!r} is ambiguous (matches {some}"
                       f"{', ...' if len(rows) > 5 else ''}); give more characters")
    return rows[0]


def get_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """One run's row, with its resolved config parsed into ``config``."""
    row = resolve(con, run_id)
    row["config"] = json.loads(row.pop("config_json")) if row.get("config_json") else None
    return row


def metric_names(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    rid = resolve(con, run_id)["run_id"]
    cur = con.execute("SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name", [rid])
    return [r[0] for r in cur.fetchall()]


def metric_series(con: duckdb.DuckDBPyConnection, run_id: str,
                  name: str | None = None) -> list[dict[str, Any]]:
    """Metric points ``{name, step, value, t}`` of one run (one metric when ``name``)."""
    rid = resolve(con, run_id)["run_id"]
    sql = "SELECT name, step, value, t FROM metrics WHERE run_id = ?"
    params: list[Any] = [rid]
    if name is not None:
        sql += " AND name = ?"
        params.append(name.lstrip("/"))
    return _dicts(con.execute(sql + " ORDER BY name, step NULLS LAST, t", params))


def logs(con: duckdb.DuckDBPyConnection, run_id: str, n: int = 100,
         stream: str | None = None) -> list[dict[str, Any]]:
    """The last ``n`` output lines ``{seq, t, stream, line}`` of one run, oldest first.

    Filters on the span of the run's log times kept at ingest as well as on its id: exact,
    and it lets DuckDB skip other runs' row groups without an index (see ``ingest.py``).
    """
    rid = resolve(con, run_id)["run_id"]
    span = dict(con.execute('SELECT file, "offset" FROM ingest_offsets WHERE run_id = ? '
                            "AND file IN (?, ?)", [rid, LOG_TMIN_KEY, LOG_TMAX_KEY]).fetchall())
    if len(span) < 2:
        return []
    sql = "SELECT seq, t, stream, line FROM logs WHERE run_id = ? AND t BETWEEN ? AND ?"
    params: list[Any] = [rid, span[LOG_TMIN_KEY], span[LOG_TMAX_KEY]]
    if stream is not None:
        sql += " AND stream = ?"
        params.append(stream)
    sql += f" ORDER BY seq DESC LIMIT {max(int(n), 0)}"
    return _dicts(con.execute(sql, params))[::-1]


def artifacts(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    rid = resolve(con, run_id)["run_id"]
    return _dicts(con.execute("SELECT name, kind, path, bytes, t FROM artifacts "
                              "WHERE run_id = ? ORDER BY t, name", [rid]))


def transitions(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    rid = resolve(con, run_id)["run_id"]
    rows = _dicts(con.execute("SELECT status, t, reason, detail FROM status_transitions "
                              "WHERE run_id = ? ORDER BY t", [rid]))
    for r in rows:
        r["detail"] = json.loads(r["detail"]) if r["detail"] else {}
    return rows


def compare(con: duckdb.DuckDBPyConnection, run_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Side by side: each run's row, config and per-metric summary, in the order given.

    ``metrics`` maps a metric name to ``{last, min, max, count, last_step}``.
    """
    rows = [get_run(con, r) for r in run_ids]
    if not rows:
        return []
    ids = [r["run_id"] for r in rows]
    cur = con.execute(
        "SELECT run_id, name, arg_max(value, t) AS last, min(value) FILTER (NOT isnan(value)), "
        "max(value) FILTER (NOT isnan(value)), count(*), max(step) FROM metrics "
        "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY run_id, name ORDER BY name",
        [ids])
    by_run: dict[str, dict[str, Any]] = {rid: {} for rid in ids}
    for rid, name, *stats in cur.fetchall():
        by_run[rid][name] = dict(zip(_STAT_KEYS, stats, strict=True))
    for r in rows:
        r["metrics"] = by_run[r["run_id"]]
    return rows
