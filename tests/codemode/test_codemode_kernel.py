"""Code-mode runs in a real background kernel: metrics, progress, outputs, cancel, errors."""

from __future__ import annotations

import psutil
from codemode_helpers import code_args, needs_tunix, tiny_sft_cell, wait_for

from tunixrt_jupyter.codemode import attach, shutdown_kept_kernel, start_code_run
from tunixrt_jupyter.events import iter_events
from tunixrt_jupyter.procinfo import ProcessRecord

TRAIN_TIMEOUT = 300


def _events(run, kind):
    return [e for e in iter_events(run.dir) if e["type"] == kind]


def _statuses(run):
    return [e["status"] for e in _events(run, "status")]


def _metric(run, name):
    return [e for e in _events(run, "metric") if e["name"] == name]


@needs_tunix
def test_kernel_run_trains_reports_and_returns_outputs(code_home, shell, tmp_path):
    run = start_code_run(tiny_sft_cell(steps=12), code_args(name="sft", outputs="final_loss"),
                         shell)
    assert run.status in ("pending", "running")  # returned before the cell ran
    assert run.config.run.executor == "kernel" and "code" in run.config.tags
    assert run.wait(timeout=TRAIN_TIMEOUT) == "completed"
    assert _statuses(run) == ["pending", "running", "completed"]

    loss = _metric(run, "train/loss")
    assert [e["step"] for e in loss] == list(range(1, 13))
    assert loss[-1]["value"] < loss[0]["value"]
    assert _metric(run, "eval/loss") and _metric(run, "train/learning_rate")
    progress = _events(run, "progress")
    assert progress[0] == {**progress[0], "step": 0, "total": 12}
    assert progress[-1]["step"] == 12 and progress[-1]["total"] == 12

    assert run.outputs["final_loss"] == loss[-1]["value"]
    artifacts = [a for a in run.artifacts() if a["kind"] == "output"]
    assert [a["name"] for a in artifacts] == ["final_loss"]
    assert "starting training" in (run.dir / "stdout.log").read_text()
    assert (run.dir / "code.py").read_text() == tiny_sft_cell(steps=12)
    assert (tmp_path / "work" / "tb").is_dir()  # the cell's relative path: notebook's cwd
    record = ProcessRecord.load(run.dir)
    assert record.executor == "kernel" and not record.group_pids()


@needs_tunix
def test_cancel_mid_training_kills_the_kernel_process_group(code_home, shell):
    run = start_code_run(tiny_sft_cell(steps=5000, eval_every=5000), code_args(), shell)
    wait_for(lambda: _metric(run, "train/loss"), TRAIN_TIMEOUT, what="a train/loss metric")
    record = ProcessRecord.load(run.dir)
    pids = record.group_pids()
    assert record.pid in pids
    assert run.cancel() == "cancelled"
    wait_for(lambda: not record.group_pids(), 30, what="the kernel's process group gone")
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in pids)
    assert _statuses(run) == ["pending", "running", "cancelled"]
    assert len(_metric(run, "train/loss")) < 5000


def test_exception_fails_with_the_users_traceback(code_home, shell):
    cell = ("x = 1\n"
            "def helper():\n"
            "    raise ValueError('boom from the cell')\n"
            "y = 2\n"
            "helper()\n")
    run = start_code_run(cell, code_args(), shell)
    assert run.wait(timeout=120) == "failed"
    (error,) = _events(run, "error")
    assert error["message"] == "ValueError: boom from the cell"
    tb = error["traceback"]
    assert 'File "<tunix_run cell>", line 5, in <module>' in tb
    assert 'File "<tunix_run cell>", line 3, in helper' in tb
    assert "raise ValueError('boom from the cell')" in tb  # the user's source line
    assert "tunixrt_jupyter" not in tb and "codemode" not in tb and "\x1b[" not in tb
    assert tb.splitlines()[0] == "Traceback (most recent call last):"
    assert "boom from the cell" in (run.dir / "stderr.log").read_text()
    assert _statuses(run)[-1] == "failed"


def test_tunixrt_log_inside_a_code_run_is_a_metric(code_home, shell):
    cell = ("import tunixrt\n"
            "tunixrt.log(step=1, reward=0.5)\n"
            "tunixrt.log(step=2, reward=0.75, kl=0.1)\n")
    run = start_code_run(cell, code_args(), shell)
    assert run.wait(timeout=120) == "completed"
    assert [(e["step"], e["value"]) for e in _metric(run, "reward")] == [(1, 0.5), (2, 0.75)]
    assert [(e["step"], e["value"]) for e in _metric(run, "kl")] == [(2, 0.1)]


def test_inputs_reach_the_kernel_and_outputs_come_back(code_home, shell):
    shell.user_ns["numbers"] = [1, 2, 3]
    shell.user_ns["scale"] = lambda v: v * 10  # needs cloudpickle: a lambda
    cell = ("total = sum(scale(n) for n in numbers)\n"
            "import threading\n"
            "lock = threading.Lock()\n")
    run = start_code_run(cell, code_args(inputs="numbers,scale", outputs="total,lock,nothing"),
                         shell)
    assert run.wait(timeout=120) == "completed"  # bad outputs warn, they do not fail
    assert run.outputs == {"total": 60}
    err = (run.dir / "stderr.log").read_text()
    assert "'lock' was not saved: cannot be pickled" in err
    assert "'nothing' was not saved: the cell did not define it" in err


def test_timeout_interrupts_the_cell(code_home, shell):
    cell = "import time\nwhile True:\n    time.sleep(0.02)\n"
    run = start_code_run(cell, code_args(timeout=2), shell)
    assert run.wait(timeout=120) == "timeout"
    wait_for(lambda: not ProcessRecord.load(run.dir).group_pids(), 30, what="kernel gone")


def test_a_killed_kernel_fails_the_run_naming_the_signal(code_home, shell):
    cell = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    run = start_code_run(cell, code_args(), shell)
    assert run.wait(timeout=120) == "failed"
    final = _events(run, "status")[-1]
    assert final["signal"] == "SIGKILL"


def test_keep_kernel_leaves_it_running_to_attach(code_home, shell):
    run = start_code_run("answer = 41 + 1\n", code_args(keep_kernel=True, outputs="answer"),
                         shell)
    assert run.wait(timeout=120) == "completed"
    assert run.outputs == {"answer": 42}
    record = ProcessRecord.load(run.dir)
    assert record.is_alive()
    client = attach(run)
    try:
        seen = []
        client.execute_interactive("print(answer * 2)", timeout=30,
                                   output_hook=lambda m: seen.append(m["content"].get("text")))
    finally:
        client.stop_channels()
    assert "84\n" in seen
    assert shutdown_kept_kernel(run)
    wait_for(lambda: not record.group_pids(), 30, what="kept kernel gone")


LOOP_UNTIL_FLAG = ("import os, time\n"
                   "while not os.path.exists(FLAG):\n"
                   "    time.sleep(0.02)\n")


def test_cancel_from_a_shell_stops_the_kernel_run(code_home, shell):
    import subprocess
    import sys

    shell.user_ns["FLAG"] = "/nonexistent/never"
    run = start_code_run(LOOP_UNTIL_FLAG, code_args(inputs="FLAG"), shell)
    wait_for(lambda: run.status == "running", 120, what="running")
    record = ProcessRecord.load(run.dir)
    done = subprocess.run([sys.executable, "-m", "tunixrt_jupyter.cli", "cancel", run.id],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "cancelled" in done.stdout, done.stderr
    wait_for(lambda: not record.group_pids(), 60, what="the kernel gone after a shell cancel")
    assert _statuses(run) == ["pending", "running", "cancelled"]


def test_a_queued_run_waits_pending_and_cancels_without_running(code_home, shell, tmp_path):
    flag = tmp_path / "release"
    shell.user_ns["FLAG"] = str(flag)
    first = start_code_run(LOOP_UNTIL_FLAG, code_args(inputs="FLAG", name="first"), shell)
    wait_for(lambda: first.status == "running", 120, what="first running")
    second = start_code_run("print('never')\n", code_args(name="second"), shell)
    queued = code_home.slots_dir / "queue"
    wait_for(lambda: any(second.id in p.name for p in queued.iterdir()), 120,
             what="the second run's ticket in the slot queue")
    assert second.status == "pending"
    record = ProcessRecord.load(second.dir)
    assert second.cancel() == "cancelled"
    wait_for(lambda: not record.group_pids(), 60, what="the queued run's kernel gone")
    assert _statuses(second) == ["pending", "cancelled"]
    flag.touch()
    assert first.wait(timeout=120) == "completed"
