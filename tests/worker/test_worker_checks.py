"""Worker paths that end before training: dry-run, missing Tunix, bad data, wrong platform,
cancel while queued. All run the real worker process; none needs more than a second or two
of work, and the dry-run / missing-Tunix cases run where Tunix and JAX cannot be imported."""

from __future__ import annotations

import json
import os
import signal

import pytest
import yaml
from tunixrt_testutil import needs_tunix, wait_for
from worker_helpers import (
    blocked_attempts,
    describe,
    events,
    finish,
    import_blocker,
    last_status_event,
    make_run,
    start_worker,
    statuses,
)

from tunixrt_jupyter.slots import acquire_slot
from tunixrt_jupyter.tpu import tpu_chip_count


def _blocked_env(tmp_path):
    folder = import_blocker(tmp_path / "blocker")
    return folder, {"PYTHONPATH": str(folder)}


def _failed_error(run_dir) -> str:
    final = last_status_event(run_dir)
    assert final["status"] == "failed", describe(run_dir)
    assert events(run_dir, "error"), "a failure must come with an error event"
    return final["error"]


def _check_dry_run_manifest(run_dir):
    assert statuses(run_dir) == ["pending", "running", "completed"], describe(run_dir)
    manifest = yaml.safe_load((run_dir / "manifest.yaml").read_text())
    data = manifest["dataset"]
    assert data["format"] == "text" and data["records"] > 100
    assert data["train_batches_per_epoch"] >= 1 and data["eval_batches"] >= 1
    assert data["train_tokens"] > 0
    assert manifest["tunix"]["training_config"]["max_steps"] == 12
    assert manifest["tunix"]["optimizer"]["schedule"]["peak_value"] == pytest.approx(3e-3)
    assert manifest["model"]["family"] == "tiny"
    assert manifest["config"]["run"]["mode"] == "dry-run"
    assert "google-tunix" in manifest["versions"]
    [artifact] = events(run_dir, "artifact")
    assert artifact["kind"] == "manifest" and artifact["name"] == "manifest.yaml"
    assert not (run_dir / "checkpoints").exists()


def test_dry_run_writes_manifest(home):
    run_dir = make_run(home, {"run.mode": "dry-run"})
    assert finish(start_worker(run_dir), run_dir, timeout=60) == 0
    _check_dry_run_manifest(run_dir)


def test_dry_run_never_imports_tunix_or_jax(home, tmp_path):
    blocker, env = _blocked_env(tmp_path)
    run_dir = make_run(home, {"run.mode": "dry-run"})
    assert finish(start_worker(run_dir, env=env), run_dir, timeout=60) == 0
    _check_dry_run_manifest(run_dir)
    assert blocked_attempts(blocker) == []


def test_real_run_without_tunix_fails_with_pip_hint(home, tmp_path):
    blocker, env = _blocked_env(tmp_path)
    run_dir = make_run(home)
    assert finish(start_worker(run_dir, env=env), run_dir, timeout=60) == 1
    error = _failed_error(run_dir)
    assert error.startswith("Tunix is not installed in this environment")
    assert 'pip install "tunixrt-jupyter[tunix]"' in error
    assert statuses(run_dir) == ["pending", "failed"]
    assert blocked_attempts(blocker)  # it did try, and was refused


def test_missing_dataset_file_fails_clearly(home, tmp_path):
    missing = tmp_path / "nope.jsonl"
    run_dir = make_run(home, {"dataset": str(missing)})
    assert finish(start_worker(run_dir), run_dir, timeout=60) == 1
    error = _failed_error(run_dir)
    assert "dataset.path" in error and str(missing) in error and "does not exist" in error


def test_dataset_without_the_text_field_fails_clearly(home, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"body": f"line {i}"}) + "\n" for i in range(50)))
    run_dir = make_run(home, {"dataset": str(data)})
    assert finish(start_worker(run_dir), run_dir, timeout=60) == 1
    error = _failed_error(run_dir)
    assert "'text'" in error and "dataset.text_field" in error and "'body'" in error


def test_dry_run_with_too_little_data_names_batch_size(home, tmp_path):
    data = tmp_path / "small.jsonl"
    data.write_text(json.dumps({"text": "hi"}) + "\n" + json.dumps({"text": "there"}) + "\n")
    run_dir = make_run(home, {"dataset": str(data), "run.mode": "dry-run",
                              "training.batch_size": 8})
    assert finish(start_worker(run_dir), run_dir, timeout=60) == 1
    assert "training.batch_size=8" in _failed_error(run_dir)


@needs_tunix
@pytest.mark.skipif(tpu_chip_count() > 0, reason="this machine has a TPU")
def test_tpu_requested_on_a_machine_without_one_fails_loudly(home):
    run_dir = make_run(home, {"run.platform": "tpu"})
    assert finish(start_worker(run_dir), run_dir, timeout=120) == 1
    error = _failed_error(run_dir)
    assert error.startswith("asked for tpu but JAX")
    assert statuses(run_dir) == ["pending", "failed"]  # never `running` on the wrong device


def test_cancel_while_waiting_for_a_slot(home, tmp_path):
    blocker, env = _blocked_env(tmp_path)
    held = acquire_slot(home.slots_dir, "someone-else", 1)  # the only slot is busy
    try:
        run_dir = make_run(home)
        proc = start_worker(run_dir, env=env)
        queue = home.slots_dir / "queue"
        wait_for(lambda: any(run_dir.name in p.name for p in queue.iterdir())
                 or proc.poll() is not None, timeout=60, what="the worker to queue for a slot")
        os.killpg(proc.pid, signal.SIGTERM)
        assert finish(proc, run_dir, timeout=60) == 0
    finally:
        held.release()
    assert statuses(run_dir) == ["pending", "cancelled"], describe(run_dir)
    assert blocked_attempts(blocker) == []  # JAX is never imported while queued
