"""A real tiny Tunix run through the public API, from launch to the DuckDB history."""

from __future__ import annotations

import duckdb
from tunixrt_testutil import needs_tunix, wait_for

import tunixrt_jupyter as tunixrt
from tunixrt_jupyter.events import iter_events
from tunixrt_jupyter.store.catalog import Catalog

pytestmark = needs_tunix


def _statuses(run):
    return [e["status"] for e in iter_events(run.dir) if e["type"] == "status"]


def _catalog_counts(home, run_id):
    tunixrt.runs(home=home)  # opening the history ingests what is new
    con = duckdb.connect(str(home.catalog_path), read_only=True)
    try:
        metrics = con.execute("SELECT count(*) FROM metrics WHERE run_id = ?", [run_id]).fetchone()
        row = con.execute("SELECT status, final_loss FROM runs WHERE run_id = ?",
                          [run_id]).fetchone()
        return metrics[0], row
    finally:
        con.close()


def test_tiny_run_end_to_end(home):
    run = tunixrt.run(max_steps=12, eval_every_n_steps=4, checkpoint_every_n_steps=6,
                      name="e2e", home=home)
    assert run.status in ("pending", "running")  # returns before training
    assert run.wait(timeout=300) == "completed"
    assert _statuses(run) == ["pending", "running", "completed"]
    loss = run.metrics("train/loss")
    assert len(loss) >= 10
    assert loss["value"].iloc[-1] < loss["value"].iloc[0]
    assert len(run.metrics("eval/loss")) >= 1
    assert any((run.dir / "checkpoints").iterdir())
    events_metrics = sum(1 for e in iter_events(run.dir) if e["type"] == "metric")
    n_metrics, row = _catalog_counts(home, run.id)
    assert n_metrics == events_metrics
    assert row[0] == "completed"
    assert row[1] == loss["value"].iloc[-1]
    assert (run.dir / "manifest.yaml").is_file()


def test_cancel_running_run_kills_group_and_keeps_metrics(home):
    from tunixrt_jupyter.procinfo import ProcessRecord

    run = tunixrt.run(max_steps=2000, eval_every_n_steps=1000, home=home, grace_s=20)
    wait_for(lambda: len(run.metrics("train/loss")) >= 3, 300, what="three loss points")
    record = ProcessRecord.load(run.dir)
    assert run.cancel() == "cancelled"
    wait_for(lambda: not record.group_pids(), 30, what="process group gone")
    kept = len(run.metrics("train/loss"))
    assert kept >= 3
    n_metrics, row = _catalog_counts(home, run.id)
    assert row[0] == "cancelled"
    assert n_metrics == sum(1 for e in iter_events(run.dir) if e["type"] == "metric")


def test_pending_run_cancels_at_once_and_queue_moves_on(home):
    first = tunixrt.run(max_steps=2000, eval_every_n_steps=1000, home=home)
    second = tunixrt.run(max_steps=5, home=home)
    third = tunixrt.run(max_steps=4, eval_every_n_steps=2, home=home)
    wait_for(lambda: first.status == "running", 120, what="first running")
    assert second.status == "pending" and third.status == "pending"
    assert second.cancel() == "cancelled"
    assert _statuses(second) == ["pending", "cancelled"]
    assert third.status == "pending"
    first.cancel()
    assert third.wait(timeout=300) == "completed"


def test_timeout_ends_a_run_as_timeout(home):
    run = tunixrt.run(max_steps=5000, eval_every_n_steps=1000, timeout_s=3, home=home)
    assert run.wait(timeout=300) == "timeout"
    assert "running" in _statuses(run)


def test_kill_9_of_the_worker_is_failed_with_the_signal_named(home):
    import os
    import signal

    from tunixrt_jupyter.procinfo import ProcessRecord

    run = tunixrt.run(max_steps=5000, eval_every_n_steps=1000, home=home)
    wait_for(lambda: run.status == "running", 120, what="running")
    os.kill(ProcessRecord.load(run.dir).pid, signal.SIGKILL)
    assert run.wait(timeout=60) == "failed"
    final = [e for e in iter_events(run.dir) if e["type"] == "status"][-1]
    assert final["signal"] == "SIGKILL" and "SIGKILL" in final["error"]


def test_dry_run_completes_without_training(home):
    run = tunixrt.run(dry_run=True, home=home)
    assert run.wait(timeout=120) == "completed"
    assert (run.dir / "manifest.yaml").is_file()
    assert not any(e["type"] == "metric" for e in iter_events(run.dir))
    rows, total = Catalog(home.root).list_runs(mode="dry-run")
    assert total == 1 and rows[0]["run_id"] == run.id


def test_resume_starts_a_new_run_from_the_old_runs_checkpoint(home):
    first = tunixrt.run(max_steps=6, checkpoint_every_n_steps=3, eval_every_n_steps=3,
                        home=home, name="base")
    assert first.wait(timeout=300) == "completed"
    second = first.resume(max_steps=10, wait=True)
    assert second.status == "completed" and second.id != first.id
    assert second.name == "base-resumed"
    steps = list(second.metrics("train/loss")["step"])
    assert steps[0] == 7 and steps[-1] == 10  # continued after step 6, not from scratch
    assert first.status == "completed"  # the old run is untouched
    assert len(first.metrics("train/loss")) == 6


def test_resume_from_a_run_without_checkpoints_is_a_clear_error(home):
    import pytest

    from tunixrt_jupyter.config import ConfigError

    dry = tunixrt.run(dry_run=True, home=home)
    dry.wait(timeout=120)
    with pytest.raises(ConfigError, match="training.resume_from"):
        tunixrt.run(home=home, **{"training.resume_from": dry.id})
