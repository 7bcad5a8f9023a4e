"""Real processes: killed mid-ingest (SIGKILL), and several writers/readers on one catalog."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import duckdb
from store_helpers import (
    T0,
    append_events,
    append_raw,
    catalog_counts,
    duplicate_log_seqs,
    env_for_children,
    file_counts,
    make_run,
    status,
    training_events,
)

from tunixrt_jupyter.store import Catalog

CHILD = str(Path(__file__).with_name("store_child.py"))


def _child(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, CHILD, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env_for_children())


def _duplicate_metrics(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM (SELECT run_id, name, step FROM metrics "
                           "GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
    finally:
        con.close()


def test_sigkill_mid_ingest_loses_and_doubles_nothing(tmp_path):
    run_ids = [f"20250615-120000-0000{i:02d}" for i in range(3)]
    for i, rid in enumerate(run_ids):
        run = make_run(tmp_path, rid)
        append_events(run, [status("pending", T0), status("running", T0 + 1)]
                      + training_events(40_000 + i * 7_000))
        append_raw(run, "stdout.log", "".join(f"line {n}\n" for n in range(20_000)))
    cat = Catalog(tmp_path)
    with cat.write():
        pass  # the schema exists before the first child, so kills land in ingest itself

    # kill the first child as soon as it starts ingesting, later ones after 1, 2, 4 commits:
    # each kill lands while a batch is being read, inserted or committed
    kills = 0
    for after_commits in (0, 1, 2, 4):
        proc = _child("ingest", str(tmp_path), "9000", str(256 << 10))
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(after_commits):
            line = proc.stdout.readline().strip()
            if not line.startswith("commit"):
                break
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        kills += proc.returncode == -signal.SIGKILL
    assert kills >= 3  # (the last child may have finished first)

    cat.ingest()  # reopen (replaying any WAL) and catch up
    for rid in run_ids:
        assert catalog_counts(cat.path, rid) == file_counts(tmp_path / "runs" / rid), rid
    assert _duplicate_metrics(cat.path) == 0
    assert duplicate_log_seqs(cat.path) == 0
    rows, total = cat.list_runs()
    assert total == 3 and all(r["status"] == "running" for r in rows)


def test_many_processes_share_one_catalog(tmp_path):
    n_procs, rounds = 5, 10
    run_ids = [f"20250615-130000-0000{i:02d}" for i in range(n_procs)]
    Catalog(tmp_path).ingest()
    procs = [_child("worker", str(tmp_path), rid, str(rounds)) for rid in run_ids]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert out.startswith("ok"), (out, err)

    cat = Catalog(tmp_path)
    cat.ingest()
    for rid in run_ids:
        run = tmp_path / "runs" / rid
        assert catalog_counts(cat.path, rid) == file_counts(run), rid
        assert file_counts(run)["metrics"] == rounds * 20
    assert _duplicate_metrics(cat.path) == 0
    assert duplicate_log_seqs(cat.path) == 0
    rows, total = cat.list_runs(tags="stress", limit=None)
    assert total == n_procs and {r["status"] for r in rows} == {"completed"}
    assert all(r["step"] == rounds * 40 - 2 for r in rows)
