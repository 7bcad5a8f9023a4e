"""Catalog schema as an ordered list of migrations, each with its way up and its way down.

The catalog is a derived index (the run folders are the truth), but a user's history file
outlives package versions: newer code upgrades it in place, and ``tunixrt migrate --target N``
takes it back down for older code. Each step runs in one transaction together with its
``schema_version`` row, so a crash mid-migration leaves the previous version intact.

Times are unix seconds (DOUBLE), as in ``events.jsonl``. No indexes on ``logs`` or ``metrics``:
measured, they cost 14% of ingest and queries were fast without them (insertion order plus
DuckDB's zone maps). ``ingest_offsets`` also holds ingest bookkeeping under pseudo file names
starting with ``#`` (see ``ingest.py``).
"""

from __future__ import annotations

import time

import duckdb

V1_UP = [
    """CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY,
        name VARCHAR,
        tags VARCHAR[],
        model VARCHAR,
        dataset VARCHAR,
        mode VARCHAR,
        executor VARCHAR,
        platform VARCHAR,
        status VARCHAR,
        created_at DOUBLE,
        started_at DOUBLE,
        ended_at DOUBLE,
        step BIGINT,
        total_steps BIGINT,
        final_loss DOUBLE,
        best_eval_loss DOUBLE,
        error VARCHAR,
        dir VARCHAR,
        config_json VARCHAR
    )""",
    """CREATE TABLE status_transitions (
        run_id VARCHAR, status VARCHAR, t DOUBLE, reason VARCHAR, detail JSON)""",
    "CREATE TABLE metrics (run_id VARCHAR, name VARCHAR, step BIGINT, value DOUBLE, t DOUBLE)",
    "CREATE TABLE logs (run_id VARCHAR, seq BIGINT, t DOUBLE, stream VARCHAR, line VARCHAR)",
    """CREATE TABLE artifacts (
        run_id VARCHAR, name VARCHAR, kind VARCHAR, path VARCHAR, bytes BIGINT, t DOUBLE)""",
    """CREATE TABLE ingest_offsets (
        run_id VARCHAR, file VARCHAR, "offset" BIGINT, PRIMARY KEY (run_id, file))""",
]
V1_DOWN = [
    "DROP TABLE ingest_offsets",
    "DROP TABLE artifacts",
    "DROP TABLE logs",
    "DROP TABLE metrics",
    "DROP TABLE status_transitions",
    "DROP TABLE runs",
]

# v2: the config's free-text notes and the run's wall time, both filled for existing rows
# from what v1 already stored, so an upgrade needs no re-ingest.
V2_UP = [
    "ALTER TABLE runs ADD COLUMN notes VARCHAR",
    "ALTER TABLE runs ADD COLUMN duration_s DOUBLE",
    "UPDATE runs SET notes = json_extract_string(config_json, '$.notes'), "
    "duration_s = ended_at - started_at",
]
V2_DOWN = [
    "ALTER TABLE runs DROP COLUMN duration_s",
    "ALTER TABLE runs DROP COLUMN notes",
]

MIGRATIONS: list[tuple[int, list[str], list[str]]] = [
    (1, V1_UP, V1_DOWN),
    (2, V2_UP, V2_DOWN),
]
CURRENT_VERSION = MIGRATIONS[-1][0]

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, " \
                 "applied_at DOUBLE)"


class SchemaError(RuntimeError):
    """The file's schema is one this code cannot use or reach."""


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The file's schema version; 0 for a new, empty file."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_version' "
        "AND database_name = current_database()").fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def migrate(con: duckdb.DuckDBPyConnection, target: int | None = None) -> int:
    """Upgrade or downgrade to ``target`` (default :data:`CURRENT_VERSION`); return it.

    Needs a read-write connection with the catalog lock held. Each step commits on its own,
    with its ``schema_version`` row, so an interrupted run resumes from the last whole step.
    """
    target = CURRENT_VERSION if target is None else target
    known = [v for v, _, _ in MIGRATIONS]
    if target != 0 and target not in known:
        raise SchemaError(f"unknown schema version {target}; known versions: 0, "
                          + ", ".join(map(str, known)))
    con.execute(_VERSION_TABLE)
    version = current_version(con)
    if version and version not in known:
        raise SchemaError(
            f"the catalog has schema version {version}, newer than this tunixrt knows "
            f"(up to {CURRENT_VERSION}); upgrade tunixrt, or rebuild the catalog from the run "
            "folders with `tunixrt reindex`")
    for v, up, _down in MIGRATIONS:  # upgrades, oldest first
        if version < v <= target:
            _step(con, up, "INSERT INTO schema_version VALUES (?, ?)", (v, time.time()))
            version = v
    for v, _up, down in reversed(MIGRATIONS):  # downgrades, newest first
        if target < v <= version:
            _step(con, down, "DELETE FROM schema_version WHERE version = ?", (v,))
            version = v - 1
    return version


def _step(con: duckdb.DuckDBPyConnection, statements: list[str], bookkeeping: str,
          params: tuple) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        for sql in statements:
            con.execute(sql)
        con.execute(bookkeeping, params)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
