"""Migrations up and down on a populated catalog; reindex rebuilds the same history."""

from __future__ import annotations

import duckdb
import pytest
from store_helpers import (
    T0,
    TABLES,
    append_events,
    append_raw,
    catalog_counts,
    make_run,
    status,
    training_events,
)

from tunixrt_jupyter.store import CURRENT_VERSION, Catalog, SchemaError
from tunixrt_jupyter.store.schema import MIGRATIONS

IDS = ["20250615-120000-aaaaaa", "20250615-120500-bbbbbb", "20250615-121000-cccccc"]


@pytest.fixture
def populated(tmp_path):
    for i, rid in enumerate(IDS):
        run = make_run(tmp_path, rid, notes=f"note {i}", tags=[f"t{i}"])
        append_events(run, [status("pending", T0 + i), status("running", T0 + i + 1)]
                      + training_events(200, t0=T0 + i)
                      + [{"t": T0 + i + 5, "type": "checkpoint", "step": 100, "path": "/c"},
                         status("completed", T0 + i + 9)])
        append_raw(run, "stderr.log", "".join(f"warn {n}\n" for n in range(30)))
    cat = Catalog(tmp_path)
    cat.ingest()
    return cat


def _columns(cat: Catalog) -> list[str]:
    with cat.write(upgrade=False) as con:
        return [r[0] for r in con.execute("DESCRIBE runs").fetchall()]


def _versions(cat: Catalog) -> list[int]:
    with cat.write(upgrade=False) as con:
        return [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY 1")
                .fetchall()]


def _rows(cat: Catalog, columns: str = "*") -> list[tuple]:
    with cat.write(upgrade=False) as con:
        return con.execute(f"SELECT {columns} FROM runs ORDER BY run_id").fetchall()


def test_migrations_are_ordered_and_current():
    versions = [v for v, _, _ in MIGRATIONS]
    assert versions == sorted(versions) == list(range(1, CURRENT_VERSION + 1))
    assert CURRENT_VERSION >= 2


def test_down_and_up_on_a_populated_file(populated):
    cat = populated
    assert cat.version() == CURRENT_VERSION == 2
    assert _versions(cat) == [1, 2]
    counts = {rid: catalog_counts(cat.path, rid) for rid in IDS}
    full = _rows(cat)
    v1_cols = "* EXCLUDE (notes, duration_s)"
    v1_rows = _rows(cat, v1_cols)
    assert [r["notes"] for r in cat.list_runs(sort="run_id")[0]] == ["note 0", "note 1", "note 2"]

    assert cat.migrate(1) == 1
    assert cat.version() == 1 and _versions(cat) == [1]
    assert "notes" not in _columns(cat) and "duration_s" not in _columns(cat)
    assert _rows(cat) == v1_rows  # every v1 column of every run survived
    assert {rid: catalog_counts(cat.path, rid) for rid in IDS} == counts

    assert cat.migrate() == 2
    assert _versions(cat) == [1, 2]
    assert _rows(cat) == full  # notes and duration_s filled again from the v1 data
    assert {rid: catalog_counts(cat.path, rid) for rid in IDS} == counts


def test_older_file_is_upgraded_on_open(populated):
    cat = populated
    cat.migrate(1)
    again = Catalog(cat.home)
    rows, total = again.list_runs()  # a read upgrades it first
    assert total == 3 and rows[0]["notes"] == "note 2" and rows[0]["duration_s"] == 8
    assert again.version() == CURRENT_VERSION


def test_down_to_zero_then_reingest(populated):
    cat = populated
    counts = {rid: catalog_counts(cat.path, rid) for rid in IDS}
    assert cat.migrate(0) == 0
    with cat.write(upgrade=False) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"schema_version"}
    cat.ingest()  # upgrades to current, and the offsets went with the tables: all re-read
    assert {rid: catalog_counts(cat.path, rid) for rid in IDS} == counts


def test_unknown_versions_are_refused(populated):
    cat = populated
    with pytest.raises(SchemaError, match="unknown schema version 7"):
        cat.migrate(7)
    with cat.write() as con:
        con.execute("INSERT INTO schema_version VALUES (99, 0)")
    with pytest.raises(SchemaError, match="reindex"):
        cat.list_runs()
    with pytest.raises(SchemaError, match="reindex"):
        cat.ingest()
    cat.reindex()
    assert cat.version() == CURRENT_VERSION and cat.list_runs()[1] == 3


def test_reindex_rebuilds_identical_counts(populated):
    cat = populated
    with cat.read() as con:
        before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        runs_before = con.execute("SELECT * EXCLUDE (dir) FROM runs ORDER BY run_id").fetchall()
    stats = cat.reindex()
    assert stats.runs == 3
    with cat.read() as con:
        after = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        runs_after = con.execute("SELECT * EXCLUDE (dir) FROM runs ORDER BY run_id").fetchall()
    assert after == before and runs_after == runs_before
    assert not cat.path.with_name("history.duckdb.reindex").exists()


def test_reindex_replaces_a_damaged_file(populated):
    cat = populated
    cat.path.write_bytes(b"this is not a duckdb file" * 1000)
    with pytest.raises(duckdb.Error):
        cat.list_runs()
    cat.reindex()
    assert cat.list_runs()[1] == 3
    assert catalog_counts(cat.path, IDS[0])["metrics"] == 100
