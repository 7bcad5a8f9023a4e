"""Concurrency slots across real processes: at most N at once, started in launch order."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tunixrt_testutil import wait_for

SCRIPT = textwrap.dedent("""
    import sys, time
    from tunixrt_jupyter.slots import acquire_slot
    slots, run_id, n, log, hold = sys.argv[1:6]
    slot = acquire_slot(slots, run_id, int(n))
    with open(log, "a") as f:
        f.write(f"start {run_id}\\n")
    import os
    while not os.path.exists(hold + "." + run_id):
        time.sleep(0.02)
    with open(log, "a") as f:
        f.write(f"end {run_id}\\n")
""")


def _launch(tmp_path, run_id, n, log, hold):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / "slots"), run_id,
                             str(n), str(log), str(hold)])


def _lines(log):
    return log.read_text().splitlines() if log.exists() else []


def test_one_slot_runs_one_at_a_time_in_launch_order(tmp_path):
    log, hold = tmp_path / "log.txt", tmp_path / "release"
    procs = []
    for i in range(3):
        procs.append(_launch(tmp_path, f"r{i}", 1, log, hold))
        wait_for(lambda i=i: len(list((tmp_path / "slots" / "queue").glob(f"*-r{i}")))
                 or f"start r{i}" in _lines(log), 30, what=f"r{i} queued")
    for i in range(3):
        wait_for(lambda i=i: f"start r{i}" in _lines(log), 30, what=f"r{i} start")
        assert sum(line.startswith("start") for line in _lines(log)) == i + 1
        (tmp_path / f"release.r{i}").touch()
        wait_for(lambda i=i: f"end r{i}" in _lines(log), 30, what=f"r{i} end")
    for p in procs:
        assert p.wait(timeout=30) == 0
    assert _lines(log) == ["start r0", "end r0", "start r1", "end r1", "start r2", "end r2"]


def test_two_slots_run_two_at_once(tmp_path):
    log, hold = tmp_path / "log.txt", tmp_path / "release"
    procs = [_launch(tmp_path, f"r{i}", 2, log, hold) for i in range(3)]
    wait_for(lambda: sum(x.startswith("start") for x in _lines(log)) == 2, 30, what="two start")
    started = [x.split()[1] for x in _lines(log) if x.startswith("start")]
    (tmp_path / f"release.{started[0]}").touch()
    wait_for(lambda: sum(x.startswith("start") for x in _lines(log)) == 3, 30, what="third")
    for rid in ("r0", "r1", "r2"):
        (tmp_path / f"release.{rid}").touch()
    for p in procs:
        assert p.wait(timeout=30) == 0


def test_a_killed_holder_frees_its_slot(tmp_path):
    log, hold = tmp_path / "log.txt", tmp_path / "release"
    first = _launch(tmp_path, "a", 1, log, hold)
    wait_for(lambda: "start a" in _lines(log), 30, what="a start")
    second = _launch(tmp_path, "b", 1, log, hold)
    first.kill()
    wait_for(lambda: "start b" in _lines(log), 30, what="b takes the freed slot")
    (tmp_path / "release.b").touch()
    assert second.wait(timeout=30) == 0
