"""The inline executor: code runs and config runs in a thread of this very process."""

from __future__ import annotations

from codemode_helpers import code_args, needs_tunix, tiny_sft_cell, wait_for

import tunixrt_jupyter as tunixrt
from tunixrt_jupyter.codemode import start_code_run
from tunixrt_jupyter.events import iter_events
from tunixrt_jupyter.procinfo import ProcessRecord

TRAIN_TIMEOUT = 300


def _metric(run, name):
    return [e for e in iter_events(run.dir) if e["type"] == "metric" and e["name"] == name]


def _statuses(run):
    return [e["status"] for e in iter_events(run.dir) if e["type"] == "status"]


@needs_tunix
def test_inline_code_run_completes_with_metrics(code_home, shell):
    shell.user_ns["marker"] = object()  # not pickled: inline gets the object itself
    cell = tiny_sft_cell(steps=12, user_hooks=True) + "same_marker = marker\n"
    cell += "hook_steps = recorder.steps\n"
    run = start_code_run(cell, code_args(executor="inline", inputs="marker",
                                         outputs="final_loss,same_marker,hook_steps"), shell)
    assert run.wait(timeout=TRAIN_TIMEOUT) == "completed"
    loss = _metric(run, "train/loss")
    assert [e["step"] for e in loss] == list(range(1, 13))
    assert run.outputs["final_loss"] == loss[-1]["value"]
    assert run.outputs["hook_steps"] == list(range(1, 13))  # the user's own hooks still ran
    assert run.outputs["same_marker"] is shell.user_ns["marker"]
    assert "starting training" in (run.dir / "stdout.log").read_text()
    record = ProcessRecord.load(run.dir)
    assert record.executor == "inline" and record.pid == __import__("os").getpid()


@needs_tunix
def test_inline_cancel_stops_at_the_next_tunix_step(code_home, shell):
    run = start_code_run(tiny_sft_cell(steps=5000, eval_every=5000),
                         code_args(executor="inline"), shell)
    wait_for(lambda: _metric(run, "train/loss"), TRAIN_TIMEOUT, what="a train/loss metric")
    assert run.cancel() == "cancelled"
    assert _statuses(run) == ["pending", "running", "cancelled"]
    assert len(_metric(run, "train/loss")) < 5000


def test_inline_cancel_outside_tunix_says_so_and_ends_when_the_cell_returns(code_home, shell,
                                                                            tmp_path):
    flag = tmp_path / "release"
    shell.user_ns["FLAG"] = str(flag)
    cell = ("import os, time\n"
            "while not os.path.exists(FLAG):\n"
            "    time.sleep(0.02)\n"
            "print('cell returned')\n")
    run = start_code_run(cell, code_args(executor="inline", inputs="FLAG"), shell)
    wait_for(lambda: run.status == "running", 60, what="running")
    run.cancel(wait=False)
    stderr = run.dir / "stderr.log"
    wait_for(lambda: stderr.is_file() and "only stop at a Tunix step" in stderr.read_text(),
             120, what="the can't-stop-here notice")
    assert run.status == "running"
    flag.touch()
    assert run.wait(timeout=60) == "cancelled"
    assert "cell returned" in (run.dir / "stdout.log").read_text()


def test_inline_output_goes_to_the_run_not_to_other_threads(code_home, shell, capsys):
    run = start_code_run("print('from the run')\nimport sys\nprint('err', file=sys.stderr)\n",
                         code_args(executor="inline"), shell)
    print("from the test thread")
    assert run.wait(timeout=60) == "completed"
    assert (run.dir / "stdout.log").read_text() == "from the run\n"
    assert (run.dir / "stderr.log").read_text() == "err\n"
    assert "from the test thread" in capsys.readouterr().out


@needs_tunix
def test_inline_config_run_uses_the_worker(code_home, monkeypatch):
    monkeypatch.setenv("TUNIXRT_IN_WORKER", "0")  # the in-process worker sets it; restore
    run = tunixrt.run(max_steps=6, eval_every_n_steps=3, executor="inline", name="inline-cfg",
                      home=code_home)
    assert run.wait(timeout=TRAIN_TIMEOUT) == "completed"
    assert len(_metric(run, "train/loss")) >= 5
    assert ProcessRecord.load(run.dir).executor == "inline"
