"""The `tunixrt` command: real processes, exit codes that say what happened."""

from __future__ import annotations

import subprocess
import sys

from tunixrt_testutil import needs_tunix


def tunixrt_cli(home, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "tunixrt_jupyter.cli", "--home", str(home.root),
                           *args], capture_output=True, text=True, timeout=timeout)


def test_bad_config_exits_2_with_a_clear_message(home):
    res = tunixrt_cli(home, "run", "training.batch_size=-3", "run.mode=fast")
    assert res.returncode == 2
    assert "training.batch_size" in res.stderr and "run.mode" in res.stderr
    assert "Traceback" not in res.stderr
    assert home.run_ids() == []  # nothing was created


def test_unknown_run_id_exits_2(home):
    res = tunixrt_cli(home, "show", "nope")
    assert res.returncode == 2 and "no run 'nope'" in res.stderr


def test_dry_run_wait_then_runs_show_logs(home):
    res = tunixrt_cli(home, "run", "--dry-run", "--wait", "name=cli-dry")
    assert res.returncode == 0, res.stderr
    run_id = home.run_ids()[0]
    listing = tunixrt_cli(home, "runs", "--mode", "dry-run")
    assert "cli-dry" in listing.stdout and "completed" in listing.stdout
    assert "1 of 1 runs" in listing.stdout
    shown = tunixrt_cli(home, "show", run_id[-6:])
    assert shown.returncode == 0 and "completed" in shown.stdout
    as_json = tunixrt_cli(home, "runs", "--json")
    assert '"total": 1' in as_json.stdout


@needs_tunix
def test_run_wait_exit_code_and_cancel_of_a_finished_run(home):
    res = tunixrt_cli(home, "run", "--wait", "training.max_steps=4",
                      "training.eval_every_n_steps=2")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "completed" in res.stdout
    run_id = home.run_ids()[0]
    logs = tunixrt_cli(home, "logs", run_id, "-n", "5")
    assert logs.returncode == 0
    again = tunixrt_cli(home, "cancel", run_id)
    assert "completed -> completed" in again.stdout
