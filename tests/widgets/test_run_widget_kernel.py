"""RunWidget in a real kernel: thread push, poll/hello pull, busy kernel, cancel, no dupes."""

from __future__ import annotations

from pathlib import Path

from widget_helpers import RunFolder, deadline_wait, make_widget, read_json, view_replay


def _append_msgs(kernel, cid: str, reason: str | None = None) -> list[dict]:
    return [m for m in kernel.customs(cid, "append") if reason is None or m["reason"] == reason]


def _statuses(kernel, cid: str) -> list[str]:
    seen: list[str] = []
    for state in kernel.updates(cid):
        s = state.get("status")
        if s and (not seen or seen[-1] != s):
            seen.append(s)
    return seen


def test_thread_pushes_status_points_and_logs_in_order(kernel, run_folder: RunFolder):
    cid = make_widget(kernel, run_folder.dir, interval=0.05)
    rf = run_folder
    rf.event("status", status="running", platform="cpu")
    # statuses written within one tick fold into one update; wait so both are seen
    deadline_wait(lambda: "running" in _statuses(kernel, cid), 20, "running status")
    expected = rf.steps(1, 20)
    rf.log(*(f"out {i}" for i in range(30)))
    rf.log("warning: slow", "warning: slower", stream="stderr")
    expected += rf.steps(21, 40)
    rf.log(*(f"out {i}" for i in range(30, 45)))
    rf.event("status", status="completed")

    def done():
        pts, logs, _ = view_replay(_append_msgs(kernel, cid, "push"))
        return len(pts) >= len(expected) and len(logs) >= 47 and \
            "completed" in _statuses(kernel, cid)

    deadline_wait(done, 30, "pushed points, logs and the completed status")
    pushes = _append_msgs(kernel, cid, "push")
    # pushes alone are contiguous: each starts where the previous ended (no dupes, no gaps)
    p_next = l_next = None
    for m in pushes:
        if m["points"]:
            assert p_next is None or m["p0"] == p_next
            p_next = m["p0"] + len(m["points"])
        if m["logs"]:
            assert l_next is None or m["l0"] == l_next
            l_next = m["l0"] + len(m["logs"])
    points, logs, gaps = view_replay(pushes)
    assert points == expected and not gaps
    assert [t for s, t in logs if s == "o"] == [f"out {i}" for i in range(45)]
    assert [t for s, t in logs if s == "e"] == ["warning: slow", "warning: slower"]
    assert _statuses(kernel, cid) == ["running", "completed"]
    last = [u for u in kernel.updates(cid) if u.get("status") == "completed"][-1]
    assert last["summary"]["final_loss"] == expected[-2][2]  # last train/loss (eval is last)
    assert last["progress"]["step"] == 40
    # the thread ends by itself once the run is over
    deadline_wait(lambda: kernel.execute("print(w.delivering)").strip() == "False", 30,
                  "delivery thread to stop after the run ended")


def test_poll_and_hello_answer_from_handler_without_thread(kernel, run_folder: RunFolder):
    """Pull only (what Colab gets): no thread; every answer comes from the comm handler."""
    cid = make_widget(kernel, run_folder.dir, live=False)
    rf = run_folder
    rf.event("status", status="running")
    first = rf.steps(1, 10)
    rf.log("a", "b", "c")

    mid = kernel.send_custom(cid, {"type": "poll", "p": 0, "l": 0})
    reply = deadline_wait(lambda: [m for m in kernel.customs(cid, "append")
                                   if m["_parent"] == mid], 20, "poll reply")[0]
    assert reply["reason"] == "poll" and reply["p0"] == 0
    assert reply["points"] == first
    assert reply["logs"] == [["o", "a"], ["o", "b"], ["o", "c"]]
    assert reply["state"]["status"] == "running" and reply["state"]["progress"]["step"] == 10

    more = rf.steps(11, 15)
    rf.log("d")
    mid = kernel.send_custom(cid, {"type": "poll", "p": len(first), "l": 3})
    reply = deadline_wait(lambda: [m for m in kernel.customs(cid, "append")
                                   if m["_parent"] == mid], 20, "second poll reply")[0]
    assert reply["p0"] == len(first) and reply["points"] == more
    assert reply["l0"] == 3 and reply["logs"] == [["o", "d"]]

    mid = kernel.send_custom(cid, {"type": "hello", "token": "tok1"})
    hello = deadline_wait(lambda: [m for m in kernel.customs(cid, "append")
                                   if m["_parent"] == mid], 20, "hello reply")[0]
    assert hello["token"] == "tok1" and hello["p0"] == 0 and hello["points"] == first + more
    assert [t for _, t in hello["logs"]] == ["a", "b", "c", "d"]
    # nothing was pushed: the widget had no thread
    assert not _append_msgs(kernel, cid, "push")


def test_push_reaches_iopub_while_kernel_is_busy(kernel, run_folder: RunFolder, tmp_path: Path):
    cid = make_widget(kernel, run_folder.dir, interval=0.05)
    release = tmp_path / "release"
    busy_id = kernel.kc.execute(
        "import time, pathlib\n"
        f"p = pathlib.Path({str(release)!r})\n"
        "while not p.exists():\n"
        "    time.sleep(0.02)\n")
    deadline_wait(lambda: any(m["msg_type"] == "status" and m["parent_header"].get("msg_id")
                              == busy_id and m["content"]["execution_state"] == "busy"
                              for m in kernel.messages()), 20, "the busy cell to start")
    run_folder.event("status", status="running")
    expected = run_folder.steps(1, 5)
    try:
        deadline_wait(lambda: view_replay(_append_msgs(kernel, cid, "push"))[0] == expected,
                      20, "points pushed while another cell runs")
        idle = [m for m in kernel.messages() if m["msg_type"] == "status"
                and m["parent_header"].get("msg_id") == busy_id
                and m["content"]["execution_state"] == "idle"]
        assert not idle, "the busy cell must still be running"
        assert "running" in _statuses(kernel, cid)
    finally:
        release.touch()
    deadline_wait(lambda: any(m["msg_type"] == "status" and m["parent_header"].get("msg_id")
                              == busy_id and m["content"]["execution_state"] == "idle"
                              for m in kernel.messages()), 20, "the busy cell to finish")


def test_push_and_poll_together_never_duplicate(kernel, run_folder: RunFolder):
    cid = make_widget(kernel, run_folder.dir, interval=0.05)
    rf = run_folder
    rf.event("status", status="running")
    expected: list[list] = []
    lines: list[str] = []
    for chunk in range(8):
        expected += rf.steps(chunk * 5 + 1, chunk * 5 + 5)
        new = [f"chunk {chunk} line {i}" for i in range(7)]
        rf.log(*new)
        lines += new
        # a view polling with stale cursors while pushes flow
        kernel.send_custom(cid, {"type": "poll", "p": max(0, len(expected) - 12),
                                 "l": max(0, len(lines) - 10)})
    rf.event("status", status="completed")

    def replayed():
        pts, logs, _ = view_replay(_append_msgs(kernel, cid))
        return (pts, logs) if len(pts) >= len(expected) and len(logs) >= len(lines) else None

    points, logs = deadline_wait(replayed, 30, "all points and lines")
    assert points == expected
    assert [t for _, t in logs] == lines
    # the same seq always carries the same point, whichever path delivered it
    by_seq: dict[int, list] = {}
    for m in _append_msgs(kernel, cid):
        for i, p in enumerate(m["points"]):
            assert by_seq.setdefault(m["p0"] + i, p) == p


def test_cancel_message_writes_stop_request(kernel, run_folder: RunFolder):
    cid = make_widget(kernel, run_folder.dir, interval=0.05)
    run_folder.event("status", status="running")
    deadline_wait(lambda: "running" in _statuses(kernel, cid), 20, "running status")
    kernel.send_custom(cid, {"type": "cancel"})
    ack = deadline_wait(lambda: kernel.customs(cid, "cancel_ack"), 20, "cancel ack")[0]
    assert ack["ok"] is True and ack["via"] == "comm"
    stop = run_folder.dir / "stop_request.json"
    assert stop.exists() and read_json(stop)["reason"] == "cancelled"
    # no process to signal here, so the engine records the cancel itself; the widget shows it
    deadline_wait(lambda: "cancelled" in _statuses(kernel, cid), 20, "cancelled status pushed")


def test_many_log_lines_are_capped(kernel, run_folder: RunFolder):
    """A burst of 50k lines: the kernel keeps and sends the last max_log_lines only."""
    cid = make_widget(kernel, run_folder.dir, interval=0.05, max_log_lines=200)
    run_folder.event("status", status="running")
    run_folder.log(*(f"line {i}" for i in range(50_000)))
    deadline_wait(lambda: any(m["logs"] and m["logs"][-1][1] == "line 49999"
                              for m in _append_msgs(kernel, cid)), 30, "the last line")
    sent = sum(len(m["logs"]) for m in _append_msgs(kernel, cid))
    assert sent <= 200 * 2, f"sent {sent} lines for a 200-line view"
    mid = kernel.send_custom(cid, {"type": "hello", "token": "t"})
    hello = deadline_wait(lambda: [m for m in kernel.customs(cid, "append")
                                   if m["_parent"] == mid], 20, "hello reply")[0]
    assert len(hello["logs"]) == 200 and hello["l0"] == 50_000 - 200
    assert hello["logs"][-1] == ["o", "line 49999"]
