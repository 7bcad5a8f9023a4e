"""The magics in real Jupyter kernels: what a notebook sends and receives, no mocks.

Each test starts a kernel of this Python (jupyter_client), with its own TUNIXRT_HOME, and
reads every IOPub message it publishes; the test plays the browser (it sends the widget's
comm messages, as ``widgets/static/run_widget.js`` does) and checks the run folders and the
DuckDB history. Waiting is always for a condition, with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from tunixrt_testutil import IopubKernel, needs_tunix, wait_for

from tunixrt_jupyter.events import current_status, iter_events

#: The compilation cache the worker tests share: a fresh home would compile from scratch.
SHARED_JAX_CACHE = Path(tempfile.gettempdir()) / f"tunixrt-tests-jax-cache-{os.getuid()}"
TRAIN_TIMEOUT = 300
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Kernel(IopubKernel):
    """A started kernel collecting every IOPub message, with magics-test helpers."""

    def __init__(self, home: Path, cwd: Path):
        env = {**os.environ, "TUNIXRT_HOME": str(home), "PYTHONUNBUFFERED": "1",
               "JAX_COMPILATION_CACHE_DIR": str(SHARED_JAX_CACHE),
               # a notebook someone watches: %tunix_run returns at once (pytest's variables
               # would otherwise make the kernel count as a batch run, where it waits)
               "TUNIXRT_NONINTERACTIVE": "0"}
        env.pop("TUNIXRT_RENDERER", None)  # the default renderer: anywidget
        super().__init__("python3", cwd, env)

    def ok(self, code: str, timeout: float = 60.0) -> tuple[str, list[dict]]:
        """Execute ``code``, which must succeed; return its stdout and its IOPub messages."""
        reply, msgs = self.run(code, timeout)
        out = "".join(m["content"]["text"] for m in msgs
                      if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
        errors = [m for m in msgs if m["msg_type"] == "error"]
        assert reply["status"] == "ok" and not errors, (reply, errors, _stderr(msgs))
        return out, msgs

    # -- the widget's comm ---------------------------------------------------------------
    def opened_state(self, comm_id: str) -> dict:
        return next(m["content"]["data"]["state"] for m in self.messages()
                    if m["msg_type"] == "comm_open" and m["content"]["comm_id"] == comm_id)

    def customs(self, comm_id: str, kind: str) -> list[dict]:
        """The widget's own messages (``widget.send``) of one ``type``, in arrival order."""
        out = []
        for m in self.comm_msgs(comm_id):
            data = m["content"]["data"]
            if data.get("method") == "custom" and data["content"].get("type") == kind:
                out.append({**data["content"], "_parent": m["parent_header"].get("msg_id")})
        return out


def _stderr(msgs: list[dict]) -> str:
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")


def _displays(msgs: list[dict]) -> list[dict]:
    return [m["content"]["data"] for m in msgs
            if m["msg_type"] in ("display_data", "execute_result")]


def _widget_id(msgs: list[dict]) -> str:
    views = [d[WIDGET_VIEW]["model_id"] for d in _displays(msgs) if WIDGET_VIEW in d]
    assert len(views) == 1, f"expected one widget view, got {_displays(msgs)}"
    return views[0]


def _statuses(kernel: Kernel, comm_id: str) -> list[str]:
    """The statuses the page saw: the opening state, then every change (repeats folded)."""
    seen = [kernel.opened_state(comm_id)["status"]]
    for state in kernel.updates(comm_id):
        if state.get("status") and state["status"] != seen[-1]:
            seen.append(state["status"])
    return seen


def _replay(messages: list[dict]) -> tuple[list[list], list[list]]:
    """Apply ``append`` messages as run_widget.js does (cursors drop what a view has)."""
    points: list[list] = []
    logs: list[list] = []
    for msg in messages:
        p0, pts = msg.get("p0", 0), msg.get("points", [])
        assert p0 <= len(points), f"a gap in the points: {p0} after {len(points)}"
        points.extend(pts[len(points) - p0:])
        l0, lines = msg.get("l0", 0), msg.get("logs", [])
        if lines and l0 + len(lines) > len(logs):
            assert l0 <= len(logs), f"a gap in the log lines: {l0} after {len(logs)}"
            logs.extend(lines[len(logs) - l0:])
    return points, logs


def _start(kernel: Kernel, line: str) -> tuple[Path, str]:
    """``r = %tunix_run LINE`` -> (run folder, the widget's comm id)."""
    out, msgs = kernel.ok(f"r = %tunix_run {line}\nprint(r.dir)")
    return Path(out.strip().splitlines()[-1]), _widget_id(msgs)


def _history_row(kernel: Kernel, run_dir: Path) -> dict:
    """The run's row in the DuckDB history, as ``tunixrt.runs()`` returns it."""
    out, _ = kernel.ok(
        "import json, tunixrt\n"
        f"rows = [row for row in tunixrt.runs().rows if row['run_id'] == {run_dir.name!r}]\n"
        "print(json.dumps(rows, default=str))")
    rows = json.loads(out.strip().splitlines()[-1])
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture
def kernel(tmp_path):
    k = Kernel(tmp_path / "home", tmp_path)
    k.ok("%load_ext tunixrt")
    yield k
    k.close()


def test_load_ext_twice_is_harmless(kernel):
    from tunixrt_jupyter.magics import TunixMagics

    out, msgs = kernel.ok("%load_ext tunixrt\n%load_ext tunixrt\n"
                          "m = get_ipython().magics_manager.magics\n"
                          "import json\n"
                          "print(json.dumps([n for n in m['line'] if n.startswith('tunix_')]))\n"
                          "print(json.dumps([n for n in m['cell'] if n.startswith('tunix_')]))")
    line, cell = (json.loads(text) for text in out.strip().splitlines()[-2:])
    assert {"tunix_run", "tunix_runs", "tunix_show", "tunix_logs", "tunix_cancel",
            "tunix_config", "tunix_env"} <= set(line)
    assert set(TunixMagics.magics["line"]) <= set(line)
    assert set(TunixMagics.magics["cell"]) <= set(cell) and "tunix_run" in cell
    assert not _stderr(msgs)
    out, _ = kernel.ok("r = %tunix_run --dry-run --quiet\nprint(r.wait(60))")
    assert out.strip() == "completed"  # the magics still work, registered once


def test_dry_run_returns_a_run_and_displays_its_widget(kernel, tmp_path):
    out, msgs = kernel.ok("r = %tunix_run --dry-run --name dry\n"
                          "print(type(r).__name__, r.name, r.config.run.mode)")
    assert out.strip().splitlines()[-1] == "Run dry dry-run"
    (view,) = [d for d in _displays(msgs) if WIDGET_VIEW in d]
    assert re.fullmatch(r"RunWidget\(run=[0-9a-f]{6}, status=\w+\)", view["text/plain"])
    assert "tunixrt-static-run" in view["text/html"]  # the snapshot kept in the notebook
    out, _ = kernel.ok("print(r.wait(60))")
    assert out.strip() == "completed"
    assert (tmp_path / "home" / "runs" / kernel.ok("print(r.id)")[0].strip()
            / "manifest.yaml").is_file()


@needs_tunix
@pytest.mark.slow
def test_live_run_widget_carries_statuses_progress_points_and_logs(kernel):
    run_dir, cid = _start(kernel, "--max-steps 8 --no-wait --name live")
    wait_for(lambda: current_status(run_dir) == "completed", TRAIN_TIMEOUT,
             what="the run to complete")
    wait_for(lambda: "completed" in _statuses(kernel, cid), 30,
             what="the completed status on the widget's comm")

    # statuses: in order, none skipped once running was seen, completed last
    seen = _statuses(kernel, cid)
    assert seen in (["pending", "running", "completed"], ["running", "completed"]), seen

    # progress: steps never go back, and the last one is the whole run
    steps = [s["progress"]["step"] for s in kernel.updates(cid)
             if s.get("progress", {}).get("step") is not None]
    assert steps == sorted(steps) and steps[-1] == 8
    final = [s for s in kernel.updates(cid) if s.get("status") == "completed"][-1]
    assert final["progress"]["total"] == 8

    # metric points: every point of events.jsonl, in order, each once
    events = list(iter_events(run_dir))
    expected = [[e["name"], e["step"], e["value"]] for e in events if e["type"] == "metric"]

    def pushed():
        points, _ = _replay(kernel.customs(cid, "append"))
        return points if len(points) >= len(expected) else None

    points = wait_for(pushed, 30, what="every metric point pushed")
    assert points == expected
    loss_steps = [step for name, step, _ in points if name == "train/loss"]
    assert loss_steps == list(range(1, 9))

    # log lines: the run's output, in order (stderr lines marked "e")
    stderr_lines = (run_dir / "stderr.log").read_text().splitlines()
    _, logs = _replay(kernel.customs(cid, "append"))
    assert [line for stream, line in logs if stream == "e"] == stderr_lines
    assert any("training loss" in line for line in stderr_lines)

    # a view that opens now (a reloaded page) gets the same from one hello
    mid = kernel.send_custom(cid, {"type": "hello", "token": "reload"})
    hello = wait_for(lambda: [m for m in kernel.customs(cid, "append") if m["_parent"] == mid],
                     30, what="the hello reply")[0]
    assert hello["token"] == "reload" and hello["p0"] == 0 and hello["points"] == expected
    assert hello["state"]["status"] == "completed"

    # the widget's final state is the history's row
    row = _history_row(kernel, run_dir)
    last_loss = [v for name, _, v in expected if name == "train/loss"][-1]
    assert row["status"] == final["status"] == "completed"
    assert row["step"] == final["progress"]["step"] == 8
    assert row["total_steps"] == 8
    assert row["final_loss"] == pytest.approx(last_loss)
    assert final["summary"]["final_loss"] == pytest.approx(last_loss)


@needs_tunix
@pytest.mark.slow
def test_cancel_from_the_widget_comm_cancels_the_run(kernel):
    run_dir, cid = _start(kernel, "--max-steps 5000 --no-wait --name cancel-me")
    wait_for(lambda: any(e["type"] == "metric" and e["name"] == "train/loss"
                         for e in iter_events(run_dir)), TRAIN_TIMEOUT,
             what="the run to train a step")
    # rest_cancel is on by default, but with no server the page falls back to this message
    kernel.send_custom(cid, {"type": "cancel"})
    ack = wait_for(lambda: kernel.customs(cid, "cancel_ack"), 30, what="the cancel ack")[0]
    assert ack["ok"] is True and ack["via"] == "comm", ack
    assert json.loads((run_dir / "stop_request.json").read_text())["reason"] == "cancelled"
    wait_for(lambda: current_status(run_dir) == "cancelled", 60, what="cancelled in the folder")
    wait_for(lambda: _statuses(kernel, cid)[-1] == "cancelled", 30,
             what="cancelled on the widget")
    assert _history_row(kernel, run_dir)["status"] == "cancelled"
    out, _ = kernel.ok("print(r.status)")
    assert out.strip() == "cancelled"


def test_bad_config_shows_the_short_red_error(kernel, tmp_path):
    reply, msgs = kernel.run("r = %tunix_run --max-steps 0 --lr -1 model.family=gpt")
    assert reply["status"] == "ok"
    assert not [m for m in msgs if m["msg_type"] == "error"]
    (shown,) = [d for d in _displays(msgs) if "text/html" in d]
    assert 'class="tunixrt-error"' in shown["text/html"]
    text = shown["text/plain"]
    assert text.startswith("tunixrt: Invalid tunixrt config (")
    for field in ("training.max_steps", "training.learning_rate", "model.family"):
        assert field in text
    assert "Traceback" not in text and not _stderr(msgs)
    out, _ = kernel.ok("print(r)")
    assert out.strip() == "None"
    runs = tmp_path / "home" / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "bad input must start nothing"


def test_unknown_flag_shows_the_short_red_error(kernel):
    reply, msgs = kernel.run("%tunix_run --max-stepz 5")
    assert reply["status"] == "ok", _stderr(msgs)
    (shown,) = [d for d in _displays(msgs) if "text/html" in d]
    assert 'class="tunixrt-error"' in shown["text/html"] and "--max-stepz" in shown["text/plain"]


def test_help_lists_every_flag(kernel):
    from tunixrt_jupyter.magics import TunixMagics

    reply, _ = kernel.run("%tunix_run?")
    assert reply["status"] == "ok"
    pages = [p["data"]["text/plain"] for p in reply.get("payload", []) if p.get("source") == "page"]
    assert pages, reply
    doc = ANSI.sub("", pages[0])
    flags = [flag for action in TunixMagics.tunix_run.parser._actions
             for flag in action.option_strings]
    assert len(flags) >= 20
    missing = [flag for flag in flags if flag not in doc]
    assert not missing, f"%tunix_run? does not document {missing}"
    assert "Start a Tunix training run" in doc


def test_unload_ext_removes_the_magics(kernel):
    out, _ = kernel.ok("%unload_ext tunixrt\n"
                       "m = get_ipython().magics_manager.magics\n"
                       "print([n for kind in ('line', 'cell') for n in m[kind] "
                       "if n.startswith('tunix_')])")
    assert out.strip().splitlines()[-1] == "[]"
    reply, msgs = kernel.run("%tunix_runs")
    assert reply["status"] == "error"
    assert "not found" in _stderr(msgs) + reply.get("evalue", "")
    kernel.ok("%load_ext tunixrt")  # and it loads again
    out, _ = kernel.ok("print('tunix_run' in get_ipython().magics_manager.magics['cell'])")
    assert out.strip() == "True"
