"""Status transitions, stop requests, process records and slots, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from tunixrt_testutil import wait_for

from tunixrt_jupyter.events import append_event, current_status, read_events
from tunixrt_jupyter.executors.process_group import terminate_group
from tunixrt_jupyter.lifecycle import transition
from tunixrt_jupyter.procinfo import ProcessRecord
from tunixrt_jupyter.stop import request_stop, stop_reason


def test_transitions_follow_the_table_and_first_terminal_wins(tmp_path):
    assert transition(tmp_path, "pending")
    assert not transition(tmp_path, "pending")
    assert transition(tmp_path, "running")
    assert transition(tmp_path, "cancelled")
    assert not transition(tmp_path, "failed")
    assert not transition(tmp_path, "running")
    assert current_status(tmp_path) == "cancelled"
    statuses = [e["status"] for e in read_events(tmp_path / "events.jsonl")[0]]
    assert statuses == ["pending", "running", "cancelled"]


def test_partial_last_line_is_not_read_until_complete(tmp_path):
    append_event(tmp_path, "metric", name="train/loss", value=1.0, step=1)
    with open(tmp_path / "events.jsonl", "ab") as f:
        f.write(b'{"t": 1, "type": "metric", "na')
    events, offset = read_events(tmp_path / "events.jsonl")
    assert len(events) == 1
    with open(tmp_path / "events.jsonl", "ab") as f:
        f.write(b'me": "train/loss", "value": 2.0, "step": 2}\n')
    more, _ = read_events(tmp_path / "events.jsonl", offset)
    assert [e["value"] for e in more] == [2.0]


def test_nan_metrics_stay_valid_json(tmp_path):
    append_event(tmp_path, "metric", name="train/loss", value=float("nan"), step=1)
    events, _ = read_events(tmp_path / "events.jsonl")
    assert events[0]["value"] == "nan"


def test_first_stop_reason_wins(tmp_path):
    request_stop(tmp_path, "timeout")
    request_stop(tmp_path, "cancelled")
    assert stop_reason(tmp_path) == "timeout"


def _spawn_tree(tmp_path):
    """A real process group: a parent that starts two sleeping children."""
    script = textwrap.dedent("""
        import subprocess, sys, time
        kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
                for _ in range(2)]
        print("ready", flush=True)
        time.sleep(600)
    """)
    out = open(tmp_path / "out.txt", "w")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=out,
                            start_new_session=True)
    wait_for(lambda: "ready" in (tmp_path / "out.txt").read_text(), 30, what="tree start")
    return proc


def test_terminate_group_leaves_nothing_of_the_group(tmp_path):
    proc = _spawn_tree(tmp_path)
    record = ProcessRecord.for_pid(proc.pid, "subprocess")
    assert len(record.group_pids()) == 3
    terminate_group(record, grace_s=5)
    proc.wait(timeout=10)
    assert record.group_pids() == []


def test_terminate_group_escalates_to_sigkill(tmp_path):
    script = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "print('ready', flush=True); time.sleep(600)")
    out = open(tmp_path / "o.txt", "w")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=out, start_new_session=True)
    wait_for(lambda: "ready" in (tmp_path / "o.txt").read_text(), 30, what="start")
    record = ProcessRecord.for_pid(proc.pid, "subprocess")
    assert terminate_group(record, grace_s=0.5) is True
    assert proc.wait(timeout=10) == -signal.SIGKILL


def test_process_record_survives_pid_reuse(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    record = ProcessRecord.for_pid(proc.pid, "subprocess")
    record.save(tmp_path)
    proc.wait()
    loaded = ProcessRecord.load(tmp_path)
    assert loaded == record and not loaded.is_alive()
    fake = ProcessRecord(pid=os.getpid(), pgid=os.getpgrp(), create_time=1.0,
                         host=record.host, executor="subprocess")
    assert not fake.is_alive()  # our pid, but not the recorded start time
    assert ProcessRecord.for_pid(os.getpid(), "inline").is_alive()


def test_a_record_after_a_torn_line_is_kept(tmp_path):
    with open(tmp_path / "events.jsonl", "wb") as f:
        f.write(b'{"t": 1, "type": "status", "status": "running"}\n{"t": 2, "type": "met')
    assert transition(tmp_path, "failed", error="killed")
    assert current_status(tmp_path) == "failed"
    # and a reader of a file torn by someone else still finds the appended record
    with open(tmp_path / "other.jsonl", "wb") as f:
        f.write(b'{"t": 2, "type": "met{"t": 3, "type": "status", "status": "lost"}\n')
    events, _ = read_events(tmp_path / "other.jsonl")
    assert [e["status"] for e in events] == ["lost"]
