"""Several real processes on one home: a dying supervisor, concurrent launchers, lost runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import duckdb
from tunixrt_testutil import needs_tunix, wait_for

import tunixrt_jupyter as tunixrt
from tunixrt_jupyter.events import iter_events
from tunixrt_jupyter.procinfo import ProcessRecord

pytestmark = needs_tunix


def _count(home, table, run_id):
    con = duckdb.connect(str(home.catalog_path), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()[0]
    finally:
        con.close()


def _supervisor(home, *extra):
    """`tunixrt run --wait` in its own process: it launches, supervises and ingests."""
    return subprocess.Popen(
        [sys.executable, "-m", "tunixrt_jupyter.cli", "--home", str(home.root), "run",
         "--wait", "--quiet", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _only_run(home):
    wait_for(lambda: home.run_ids(), 60, what="run folder")
    return tunixrt.get(home.run_ids()[0], home=home)


def test_killed_supervisor_loses_nothing(home):
    sup = _supervisor(home, "training.max_steps=30", "training.eval_every_n_steps=10")
    run = _only_run(home)
    wait_for(lambda: len(run.metrics("train/loss")) >= 2, 300, what="training")
    sup.kill()
    sup.wait()
    assert run.wait(timeout=300) == "completed"  # the run outlives its supervisor
    tunixrt.runs(home=home)  # the next opener ingests the rest
    events = [e for e in iter_events(run.dir)]
    assert _count(home, "metrics", run.id) == sum(e["type"] == "metric" for e in events)
    assert _count(home, "status_transitions", run.id) == sum(e["type"] == "status" for e in events)
    tunixrt.runs(home=home)  # and ingesting again doubles nothing
    assert _count(home, "metrics", run.id) == sum(e["type"] == "metric" for e in events)


def test_worker_gone_with_its_supervisor_becomes_lost(home):
    sup = _supervisor(home, "training.max_steps=5000", "training.eval_every_n_steps=1000")
    run = _only_run(home)
    wait_for(lambda: run.status == "running", 120, what="running")
    record = ProcessRecord.load(run.dir)
    sup.kill()
    sup.wait()
    os.killpg(record.pgid, signal.SIGKILL)
    wait_for(lambda: not record.is_alive(), 30, what="worker gone")
    rows = tunixrt.runs(home=home).rows
    assert rows[0]["status"] == "lost"
    assert run.status == "lost"


LAUNCHER = textwrap.dedent("""
    import sys
    import tunixrt_jupyter as tunixrt
    home, n = sys.argv[1], int(sys.argv[2])
    runs = [tunixrt.run(dry_run=True, home=home, name=f"p{i}") for i in range(n)]
    for r in runs:
        assert r.wait(timeout=300) == "completed", r
        tunixrt.runs(home=home, limit=5)
    print("ok", flush=True)
""")


def test_two_processes_launch_and_list_on_one_history(home):
    procs = [subprocess.Popen([sys.executable, "-c", LAUNCHER, str(home.root), "6"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0 and "ok" in out, out
    result = tunixrt.runs(home=home, limit=100)
    assert result.total == 12
    assert {r["status"] for r in result.rows} == {"completed"}
    for run_id in home.run_ids():
        events = list(iter_events(home.run_dir(run_id)))
        assert _count(home, "status_transitions", run_id) == sum(
            e["type"] == "status" for e in events)
