"""Ingest: incremental from byte offsets, idempotent, complete lines only, summary rows."""

from __future__ import annotations

import os
import time

import duckdb
from store_helpers import (
    T0,
    append_events,
    append_raw,
    catalog_counts,
    file_counts,
    make_run,
    status,
    training_events,
)

from tunixrt_jupyter.store import Catalog
from tunixrt_jupyter.store.ingest import SEALED_KEY, ingest_runs, parse_events

RID = "20250615-120000-aaaaaa"


def _snapshot(db) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
               for t in ("metrics", "logs", "status_transitions", "artifacts", "ingest_offsets")}
        out["runs"] = con.execute("SELECT * EXCLUDE (dir) FROM runs ORDER BY ALL").fetchall()
        return out
    finally:
        con.close()


def test_incremental_and_idempotent(tmp_path):
    home = tmp_path
    run = make_run(home, RID, name="first", tags=["a"])
    append_events(run, [status("pending", T0), status("running", T0 + 1)] + training_events(40),
                  partial='{"t": 1750000999.0, "type": "metric", "name": "train/lo')
    append_raw(run, "stdout.log", "line 1\nline 2\nhalf a li")
    append_raw(run, "stderr.log", "warning\n")
    cat = Catalog(home)

    stats = cat.ingest()
    assert stats.runs == 1 and stats.events == 42
    assert catalog_counts(cat.path, RID) == file_counts(run)
    assert catalog_counts(cat.path, RID)["logs"] == 10 + 3  # 10 inline log events + 3 raw lines

    # finish the partial lines, add more of everything
    append_events(run, [], partial='ss", "value": 0.5, "step": 999}\n')
    append_events(run, training_events(20, step0=40) + [
        {"t": T0 + 5, "type": "checkpoint", "step": 60, "path": "/ckpt/60"},
        {"t": T0 + 6, "type": "artifact", "name": "manifest", "kind": "manifest",
         "path": "/m.yaml", "bytes": 12},
        status("completed", T0 + 7)])
    append_raw(run, "stdout.log", "ne\nline 4\n")
    stats = cat.ingest()
    assert stats.events == 1 + 20 + 3
    counts = catalog_counts(cat.path, RID)
    assert counts == file_counts(run)
    assert counts == {"metrics": 31, "logs": 15 + 5, "status_transitions": 3, "artifacts": 2}
    raw = [r["line"] for r in cat.logs(RID, stream="stdout") if not r["line"].startswith("inl")]
    assert raw == ["line 1", "line 2", "half a line", "line 4"]
    assert [r["line"] for r in cat.logs(RID, stream="stderr")] == ["warning"]

    before = _snapshot(cat.path)
    again = cat.ingest()
    assert (again.runs, again.events, again.log_lines, again.transactions) == (0, 0, 0, 0)
    assert _snapshot(cat.path) == before
    cat.ingest(run_ids=[RID])
    assert _snapshot(cat.path) == before


def test_summary_row_is_folded_from_events(tmp_path):
    run = make_run(tmp_path, RID, name=None, tags=["x", "y"], family="llama3",
                   model_id="meta-llama/Llama-3.2-1B", source="jsonl", path="/data/train.jsonl",
                   executor="kernel", notes="try lr")
    append_events(run, [
        status("pending", T0),
        status("running", T0 + 2, platform="cpu"),
        {"t": T0 + 3, "type": "metric", "name": "/train/loss", "value": 3.0, "step": 1},
        {"t": T0 + 4, "type": "metric", "name": "eval/loss", "value": 2.5, "step": 1},
        {"t": T0 + 5, "type": "metric", "name": "eval/loss", "value": 2.0, "step": 2},
        {"t": T0 + 6, "type": "metric", "name": "eval/loss", "value": "nan", "step": 3},
        {"t": T0 + 6, "type": "metric", "name": "eval/loss", "value": 2.2, "step": 4},
        {"t": T0 + 7, "type": "metric", "name": "train/loss", "value": 1.5, "step": 2},
        {"t": T0 + 8, "type": "progress", "step": 2, "total": 40},
        {"t": T0 + 9, "type": "error", "message": "boom", "traceback": "..."},
        status("failed", T0 + 10, error="worker died: boom", exit_code=1),
        status("completed", T0 + 11),  # after a terminal status: recorded, but ignored
    ])
    cat = Catalog(tmp_path)
    cat.ingest()
    row = cat.get_run(RID)
    assert row["name"] == "meta-llama/Llama-3.2-1B-train.jsonl"
    assert row["tags"] == ["x", "y"]
    assert (row["model"], row["dataset"], row["mode"], row["executor"]) == (
        "meta-llama/Llama-3.2-1B", "train.jsonl", "local", "kernel")
    assert row["status"] == "failed"
    assert (row["created_at"], row["started_at"], row["ended_at"]) == (T0, T0 + 2, T0 + 10)
    assert row["duration_s"] == 8
    assert (row["step"], row["total_steps"]) == (2, 40)
    assert (row["final_loss"], row["best_eval_loss"]) == (1.5, 2.0)
    assert row["error"] == "worker died: boom"
    assert row["platform"] == "cpu"
    assert row["notes"] == "try lr"
    assert row["config"]["model"]["family"] == "llama3"
    assert [t["status"] for t in cat.transitions(RID)] == [
        "pending", "running", "failed", "completed"]
    assert cat.transitions(RID)[2]["detail"] == {"error": "worker died: boom", "exit_code": 1}


def test_chunked_ingest_gives_the_same_rows(tmp_path):
    """Many tiny chunks and transactions fold to exactly the rows of one big ingest."""
    homes = [tmp_path / "one", tmp_path / "many"]
    for home in homes:
        run = make_run(home, RID)
        append_events(run, [status("pending", T0), status("running", T0 + 1)]
                      + training_events(500) + [status("completed", T0 + 10)])
        append_raw(run, "stdout.log", "".join(f"out {i}\n" for i in range(300)))
    Catalog(homes[0]).ingest()
    many = Catalog(homes[1])
    with many.write() as con:
        stats = ingest_runs(con, many.runs_dir, chunk_bytes=256, batch_rows=7)
    assert stats.transactions > 50
    one, chunked = _snapshot(homes[0] / "history.duckdb"), _snapshot(many.path)
    for table in ("runs", "metrics", "status_transitions", "artifacts"):
        assert one[table] == chunked[table], table
    # log lines interleave differently across chunks (seq), but they are the same lines
    assert sorted(r[3:] for r in one["logs"]) == sorted(r[3:] for r in chunked["logs"])


def test_torn_lines_and_late_config(tmp_path):
    run = tmp_path / "runs" / RID
    run.mkdir(parents=True)
    # a writer killed mid-line, then the next writer's record on the same line
    append_raw(run, "events.jsonl", json_line(status("pending", T0)) + '{"t": 17, "type": "me'
               + json_line(status("running", T0 + 1)) + "not json at all\n")
    cat = Catalog(tmp_path)
    cat.ingest()
    row = cat.get_run(RID)
    assert row["status"] == "running" and row["name"] is None  # no config yet
    make_run(tmp_path, RID, name="late config")
    stats = cat.ingest()
    assert stats.runs == 1 and stats.events == 0
    assert cat.get_run(RID)["name"] == "late config"
    assert [t["status"] for t in cat.transitions(RID)] == ["pending", "running"]


def json_line(event: dict) -> str:
    import json

    return json.dumps(event) + "\n"


def test_parse_events_fast_path_and_fallback():
    good = b'{"t": 1, "type": "a"}\n{"t": 2, "type": "b"}\n'
    assert [e["type"] for e in parse_events(good)] == ["a", "b"]
    odd = b'{"t": 1, "type": "a"}\n1, 2\n[3]\n"x"\n\n{"t": 2, "type": "b"}\n'
    assert [e["type"] for e in parse_events(odd)] == ["a", "b"]


def test_finished_runs_are_sealed_and_skipped(tmp_path):
    old = "20240101-000000-0000aa"
    live = "20250615-120000-0000bb"
    now = time.time()
    make_run(tmp_path, old)
    append_events(tmp_path / "runs" / old, [status("pending", now - 7200),
                                            status("running", now - 7100),
                                            status("completed", now - 3600)])
    make_run(tmp_path, live)
    append_events(tmp_path / "runs" / live, [status("pending", now), status("running", now)])
    cat = Catalog(tmp_path)
    cat.ingest()
    with cat.read() as con:
        sealed = con.execute("SELECT run_id FROM ingest_offsets WHERE file = ?",
                             [SEALED_KEY]).fetchall()
    assert sealed == [(old,)]
    stats = cat.ingest()
    assert stats.skipped == 1  # the live run was looked at; the sealed one not even stat'ed
    # a sealed run is still caught up when asked for by id
    append_raw(tmp_path / "runs" / old, "stdout.log", "late output\n")
    assert cat.ingest().log_lines == 0
    assert cat.ingest(run_ids=[old]).log_lines == 1
    assert cat.reindex().log_lines == 1  # and by a rebuild


def test_missing_and_half_made_folders_are_harmless(tmp_path):
    cat = Catalog(tmp_path)
    assert cat.ingest().runs == 0  # no runs/ folder yet
    (tmp_path / "runs" / "20250615-120000-cccccc").mkdir(parents=True)  # mkdir, no files yet
    (tmp_path / "runs" / "20250615-120000-dddddd").mkdir()
    (tmp_path / "runs" / "20250615-120000-dddddd" / "config.yaml").write_text("name: [unclosed")
    stats = cat.ingest(run_ids=["20250615-120000-cccccc", "20250615-120000-dddddd", "nope",
                                "../escape", ""])
    assert stats.runs == 0
    weird = os.path.join(os.fsencode(tmp_path / "runs"), b"bad-\xff-name")  # not UTF-8
    os.mkdir(weird)
    append_events(make_run(tmp_path, RID), [status("pending", T0)])
    with open(os.path.join(weird, b"events.jsonl"), "w") as f:
        f.write(json_line(status("pending", T0)))
    assert cat.ingest().runs == 1  # the good run; the undecodable folder name is passed over
    assert [r["run_id"] for r in cat.list_runs()[0]] == [RID]
    assert os.path.exists(cat.path)


def test_hostile_events_never_stop_ingest(tmp_path):
    """Odd but parseable records are stored as well as they can be; none blocks the batch."""
    bad = make_run(tmp_path, RID, tags=["ok"])
    (bad / "config.yaml").write_text("name: odd\ntags: solo\n1: int key\nx: .nan\n"
                                     "model: {family: tiny}\ndataset: {source: tiny}\n")
    append_raw(bad, "events.jsonl", "\n".join([
        '{"t": 1750000000, "type": "status", "status": "pending", "x": NaN, "bad": "\\ud800"}',
        '{"t": "soon", "type": "status", "status": "running", "platform": {"a": [1]}}',
        '{"t": 1750000002, "type": "metric", "name": "\\ud800loss", "value": 1, "step": 1e30}',
        '{"t": 1750000002, "type": "metric", "name": ["x"], "value": "high", "step": "2"}',
        '{"t": 1750000003, "type": "log", "stream": null, "line": "nul \\u0000 \\udfff"}',
        '{"t": NaN, "type": "log", "line": 5}',
        '{"t": 1750000004, "type": "progress", "step": 99999999999999999999999, "total": "x"}',
        '{"t": 1750000005, "type": "artifact", "bytes": -1}',
        '{"t": 1750000006, "type": "unknown-kind", "whatever": true}',
        '{"type": "error"}',
        "[1, 2, 3]",
    ]) + "\n")
    append_raw(bad, "stdout.log", "caf\xe9 \x00 ok\n")
    with open(bad / "stderr.log", "wb") as f:
        f.write(b"\xff\xfe not utf-8\n")
    good = make_run(tmp_path, "20250615-120000-bbbbbb")
    append_events(good, [status("pending", T0)])

    cat = Catalog(tmp_path)
    stats = cat.ingest()
    assert stats.runs == 2
    row = cat.get_run(RID)
    assert row["name"] == "odd" and row["tags"] == ["solo"] and row["status"] == "running"
    assert row["error"] == "error" and row["step"] is None
    assert [m["name"] for m in cat.metric_series(RID)] == ["\ufffdloss"]
    lines = [r["line"] for r in cat.logs(RID, n=10)]
    assert lines == ["nul \x00 \ufffd", "5", "caf\xe9 \x00 ok", "\ufffd\ufffd not utf-8"]
    assert cat.transitions(RID)[0]["detail"] == {"x": "nan", "bad": "\ufffd"}
    assert cat.list_runs(model="tiny")[1] == 2  # config JSON stays queryable
    assert cat.get_run("bbbbbb")["status"] == "pending"
