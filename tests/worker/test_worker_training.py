"""Real Tunix training runs through the real worker process (tiny model, CPU).

Each test starts ``python -m tunixrt_jupyter.worker RUN_DIR`` exactly as the subprocess
executor does and checks what it leaves in the run folder. Waiting is always on a
condition with a deadline (an event appearing, the process exiting), never on a sleep.
"""

from __future__ import annotations

import os
import signal

import pytest
import yaml
from tunixrt_testutil import needs_tunix, wait_for
from worker_helpers import (
    describe,
    events,
    finish,
    info,
    last_status_event,
    make_run,
    metric_values,
    progress_at_least,
    rewrite_config,
    start_worker,
    statuses,
)

from tunixrt_jupyter.stop import request_stop, stop_reason
from tunixrt_jupyter.worker.checkpoints import latest_checkpoint_step

pytestmark = [needs_tunix, pytest.mark.slow]


def test_tiny_run_trains_evaluates_and_checkpoints(home):
    run_dir = make_run(home, {"training.max_steps": 20, "training.checkpoint_every_n_steps": 10,
                              "training.eval_every_n_steps": 10})
    proc = start_worker(run_dir, env={"JAX_COMPILATION_CACHE_DIR": ""})  # the default cache
    assert finish(proc, run_dir) == 0, describe(run_dir)

    assert statuses(run_dir) == ["pending", "running", "completed"], describe(run_dir)
    assert last_status_event(run_dir)["step"] == 20
    assert any((home.root / "cache" / "jax").iterdir()), "no compiled programs were cached"
    running = events(run_dir, "status")[1]
    assert running["platform"] == "cpu" and running["pid"] == proc.pid

    losses = metric_values(run_dir, "train/loss")
    assert len(losses) == 20
    assert losses[-1] < losses[0], losses
    assert metric_values(run_dir, "eval/loss"), "no eval/loss metric"
    assert metric_values(run_dir, "train/learning_rate"), "learning rate not logged"
    assert not any(e["name"].startswith(("/", "jax/")) for e in events(run_dir, "metric"))

    steps = [e["step"] for e in events(run_dir, "progress")]
    assert steps[0] == 0 and steps[-1] == 20 and steps == sorted(steps)
    assert all(e["total"] == 20 for e in events(run_dir, "progress"))

    assert [e["step"] for e in events(run_dir, "checkpoint")] == [10, 20]
    assert (run_dir / "checkpoints" / "20").is_dir()
    kinds = {e["kind"] for e in events(run_dir, "artifact")}
    assert kinds == {"manifest", "checkpoint"}

    assert info(run_dir, "params")[0] > 0
    assert info(run_dir, "lora_params") == [0]
    manifest = yaml.safe_load((run_dir / "manifest.yaml").read_text())
    assert manifest["result"]["status"] == "completed"
    assert manifest["result"]["final_step"] == 20
    assert manifest["tunix"]["training_config"]["max_steps"] == 20


def test_lora_run_trains_only_adapters(home):
    run_dir = make_run(home, {"model.lora.enabled": True, "model.lora.rank": 4})
    proc = start_worker(run_dir)
    assert finish(proc, run_dir) == 0, describe(run_dir)
    assert statuses(run_dir) == ["pending", "running", "completed"], describe(run_dir)
    lora = info(run_dir, "lora_params")[0]
    assert 0 < lora < info(run_dir, "params")[0]
    assert info(run_dir, "trainable_params") == [lora]
    losses = metric_values(run_dir, "train/loss")
    assert len(losses) == 12 and losses[-1] < losses[0], losses
    assert latest_checkpoint_step(run_dir / "checkpoints") == 12


def _start_long_run(home, **overrides):
    run_dir = make_run(home, {"training.max_steps": 5000, **overrides})
    proc = start_worker(run_dir)
    wait_for(lambda: progress_at_least(run_dir, 3) or proc.poll() is not None, timeout=300,
             what="training to reach step 3")
    assert proc.poll() is None, describe(run_dir)
    return run_dir, proc


def test_sigterm_stops_at_next_step_with_checkpoint(home):
    run_dir, proc = _start_long_run(home)
    os.killpg(proc.pid, signal.SIGTERM)
    assert finish(proc, run_dir) == 0, describe(run_dir)

    final = last_status_event(run_dir)
    assert final["status"] == "cancelled", describe(run_dir)
    step = final["step"]
    assert 3 <= step < 5000
    assert step in [e["step"] for e in events(run_dir, "checkpoint")]
    assert latest_checkpoint_step(run_dir / "checkpoints") == step
    assert yaml.safe_load((run_dir / "manifest.yaml").read_text())["result"]["final_step"] == step


def test_stop_request_reason_timeout_is_recorded(home):
    run_dir, proc = _start_long_run(home)
    request_stop(run_dir, "timeout")  # what a supervisor writes before its SIGTERM
    os.killpg(proc.pid, signal.SIGTERM)
    assert finish(proc, run_dir) == 0, describe(run_dir)
    assert last_status_event(run_dir)["status"] == "timeout", describe(run_dir)


def test_timeout_s_is_enforced_by_the_worker_itself(home):
    # grace_s is long so the clean stop (not the watchdog's hard exit) is what ends the run
    run_dir = make_run(home, {"training.max_steps": 100_000, "run.timeout_s": 2,
                              "run.grace_s": 600})
    proc = start_worker(run_dir)
    assert finish(proc, run_dir) == 0, describe(run_dir)
    assert statuses(run_dir) == ["pending", "running", "timeout"], describe(run_dir)
    assert stop_reason(run_dir) == "timeout"


def test_resume_after_worker_death_continues_from_latest_checkpoint(home):
    run_dir = make_run(home, {"training.max_steps": 5000,
                              "training.checkpoint_every_n_steps": 10})
    proc = start_worker(run_dir)
    wait_for(lambda: any(e["step"] >= 10 for e in events(run_dir, "checkpoint"))
             or proc.poll() is not None, timeout=300, what="the step-10 checkpoint")
    os.killpg(proc.pid, signal.SIGKILL)  # a crash: no final status is written
    proc.wait()
    assert statuses(run_dir) == ["pending", "running"], describe(run_dir)
    latest = latest_checkpoint_step(run_dir / "checkpoints")
    assert latest is not None and latest >= 10

    # without --resume a `running` folder belongs to someone else: refuse, change nothing
    refused = start_worker(run_dir)
    assert finish(refused, run_dir) == 2
    assert statuses(run_dir) == ["pending", "running"]

    rewrite_config(run_dir, {"training.max_steps": latest + 10})
    seen = len(events(run_dir))
    proc2 = start_worker(run_dir, "--resume")
    assert finish(proc2, run_dir) == 0, describe(run_dir)

    assert info(run_dir, "resumed_from_step") == [latest], describe(run_dir)
    new = events(run_dir)[seen:]
    steps = [e["step"] for e in new if e["type"] == "progress"]
    assert steps[0] == latest and steps[-1] == latest + 10
    train_steps = [e["step"] for e in new if e["type"] == "metric" and e["name"] == "train/loss"]
    assert min(train_steps) == latest + 1
    final = last_status_event(run_dir)
    assert final["status"] == "completed" and final["step"] == latest + 10, describe(run_dir)
    assert latest_checkpoint_step(run_dir / "checkpoints") == latest + 10
