"""The jupyter_server extension over real HTTP: list, detail, metrics, logs, cancel, SSE, auth."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from tunixrt_testserver import (  # noqa: F401  (server is a fixture)
    live_run,
    make_run,
    run_id,
    server,
    wait_for,
)

from tunixrt_jupyter.events import append_event, current_status


@pytest.fixture(scope="module")
def listed(server):  # noqa: F811
    """Three finished runs and a pending one in the server's default home."""
    h = server.home
    return {
        "done": make_run(h, name="srv-done", steps=10, losses=[2.0, 1.5, 1.25]),
        "failed": make_run(h, name="srv-failed", status="failed", steps=3, losses=[3.0]),
        "other": make_run(h, name="other-run", steps=10, losses=[0.5]),
        "pending": make_run(h, name="srv-pending", status="pending"),
    }


def test_lists_runs_from_the_run_folders(server, listed):  # noqa: F811
    out = server.api("GET", "runs", params={"limit": 100})
    assert out["source"] in ("catalog", "folders")
    by_id = {r["run_id"]: r for r in out["rows"]}
    assert set(by_id) >= {d.name for d in listed.values()}
    assert out["total"] >= 4
    done = by_id[listed["done"].name]
    assert done["name"] == "srv-done"
    assert done["status"] == "completed"
    assert done["step"] == 10 and done["total_steps"] == 10
    assert done["final_loss"] == pytest.approx(1.25)
    assert by_id[listed["pending"].name]["status"] == "pending"


def test_filters_sort_and_paging(server, listed):  # noqa: F811
    out = server.api("GET", "runs", params={"status": "failed,pending", "limit": 100})
    assert {r["status"] for r in out["rows"]} <= {"failed", "pending"}
    ids = {r["run_id"] for r in out["rows"]}
    assert {listed["failed"].name, listed["pending"].name} <= ids
    assert listed["done"].name not in ids

    out = server.api("GET", "runs", params={"name": "srv-", "limit": 100})
    names = {r["name"] for r in out["rows"]}
    assert "other-run" not in names and "srv-done" in names

    first = server.api("GET", "runs", params={"limit": 2, "sort": "-created_at"})
    second = server.api("GET", "runs", params={"limit": 2, "offset": 2, "sort": "-created_at"})
    assert len(first["rows"]) == 2 and first["total"] == second["total"]
    assert not {r["run_id"] for r in first["rows"]} & {r["run_id"] for r in second["rows"]}
    times = [r["created_at"] for r in first["rows"] + second["rows"]]
    assert times == sorted(times, reverse=True)

    server.api("GET", "runs", expect=400, params={"limit": "many"})


def test_run_detail_metrics_and_logs(server):  # noqa: F811
    run_dir = make_run(server.home, name="detail", steps=3, losses=[2.0, 1.0, 0.5],
                       logs=[f"line {i}" for i in range(50)])
    append_event(run_dir, "metric", name="eval/loss", value=0.75, step=3)

    detail = server.api("GET", f"runs/{run_dir.name}")
    assert detail["id"] == run_dir.name and detail["status"] == "completed"
    assert detail["config"]["name"] == "detail"
    assert detail["state"]["step"] == 3
    assert detail["state"]["last"]["train/loss"] == 0.5
    assert detail["row"]["best_eval_loss"] == 0.75

    short = server.api("GET", f"runs/{run_dir.name.rsplit('-', 1)[1]}")  # short id works too
    assert short["id"] == run_dir.name

    metrics = server.api("GET", f"runs/{run_dir.name}/metrics", params={"name": "train/loss"})
    assert [p["value"] for p in metrics["points"]] == [2.0, 1.0, 0.5]
    assert [p["step"] for p in metrics["points"]] == [1, 2, 3]
    assert metrics["names"] == ["eval/loss", "train/loss"]
    every = server.api("GET", f"runs/{run_dir.name}/metrics")
    assert len(every["points"]) == 4

    logs = server.api("GET", f"runs/{run_dir.name}/logs", params={"n": 5})
    assert logs["lines"] == [f"line {i}" for i in range(45, 50)]

    server.api("GET", "runs/20990101-000000-ffffff", expect=404)
    server.api("GET", "runs/..", expect=404)
    server.api("GET", f"runs/{run_dir.name}/logs", expect=400, params={"stream": "x"})


def test_nan_loss_is_still_valid_json(server):  # noqa: F811
    run_dir = make_run(server.home, name="diverged", status="failed", losses=[float("inf")])
    out = server.api("GET", "runs", params={"name": "diverged"})
    assert out["rows"][0]["run_id"] == run_dir.name
    assert out["rows"][0]["final_loss"] in ("inf", None)


def test_home_relative_to_root_for_notebooks_in_subfolders(server):  # noqa: F811
    sub = server.root / "project" / ".tunixrt"
    run_dir = make_run(sub, name="in-subfolder")
    for home in ("project", "project/.tunixrt"):
        out = server.api("GET", "runs", params={"home": home})
        assert [r["run_id"] for r in out["rows"]] == [run_dir.name]
        assert out["home"] == "project/.tunixrt"
    detail = server.api("GET", f"runs/{run_dir.name}", params={"home": "project"})
    assert detail["config"]["name"] == "in-subfolder"
    # the default home does not have it
    server.api("GET", f"runs/{run_dir.name}", expect=404)
    server.api("GET", "runs", expect=403, params={"home": "../.."})

    homes = server.api("GET", "homes")
    labels = [h["home"] for h in homes["homes"]]
    assert labels[0] == str(server.home.resolve()) and "project/.tunixrt" in labels


def test_cancel_stops_a_real_process_group(server):  # noqa: F811
    live = live_run(server.home, "to-cancel")
    try:
        assert server.api("GET", f"runs/{live.dir.name}")["process"]["alive"] is True
        out = server.api("POST", f"runs/{live.dir.name}/cancel", expect=(200, 202))
        assert out["run_id"] == live.dir.name
        wait_for(live.gone, timeout=30, what="the run's process group to be gone")
        wait_for(lambda: current_status(live.dir) == "cancelled", timeout=30,
                 what="the cancelled status")
        detail = server.api("GET", f"runs/{live.dir.name}")
        assert detail["status"] == "cancelled" and detail["stop_request"] == "cancelled"
        assert detail["process"]["alive"] is False
        # cancelling again is harmless and tells the final status
        again = server.api("POST", f"runs/{live.dir.name}/cancel")
        assert again == {"run_id": live.dir.name, "status": "cancelled", "cancelling": False}
    finally:
        live.kill()


def test_cancel_never_blocks_the_server(server):  # noqa: F811
    """A run that ignores SIGTERM: the reply comes before the grace period ends (202), the
    server keeps answering meanwhile, and SIGKILL ends the group after the grace period."""
    live = live_run(server.home, "stubborn", stubborn=True, grace_s=4.0)
    try:
        t0 = time.monotonic()
        out = server.api("POST", f"runs/{live.dir.name}/cancel", expect=202)
        assert time.monotonic() - t0 < 3.5
        assert out == {"run_id": live.dir.name, "status": "running", "cancelling": True}
        t1 = time.monotonic()
        server.api("GET", "runs", params={"status": "running"})
        assert time.monotonic() - t1 < 3.0
        assert not live.gone()  # still in its grace period
        wait_for(live.gone, timeout=30, what="SIGKILL after the grace period")
        wait_for(lambda: current_status(live.dir) == "cancelled", timeout=30,
                 what="the cancelled status")
    finally:
        live.kill()


def test_cancel_a_pending_run_at_once(server):  # noqa: F811
    run_dir = make_run(server.home, name="queued", status="pending")
    out = server.api("POST", f"runs/{run_dir.name}/cancel")
    assert out["status"] == "cancelled"
    assert current_status(run_dir) == "cancelled"


def _sse_messages(resp):
    """Yield the JSON payload of each ``data:`` message from an event-stream response."""
    data = []
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            yield json.loads("\n".join(data))
            data = []


def test_event_stream_reports_changes(server):  # noqa: F811
    home = server.root / "streamed" / ".tunixrt"
    first = make_run(home, name="stream-a", status="running", steps=1)
    req = urllib.request.Request(
        f"{server.url}/tunixrt/api/events?home=streamed&interval=0.2",
        headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(req, timeout=15) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        messages = _sse_messages(resp)
        snap = next(messages)
        assert snap["type"] == "snapshot" and snap["home"] == "streamed/.tunixrt"
        assert [r["run_id"] for r in snap["rows"]] == [first.name]
        assert snap["rows"][0]["status"] == "running"

        append_event(first, "progress", step=5, total=10)
        append_event(first, "status", status="completed")
        upd = next(messages)
        assert upd["type"] == "update"
        assert [(r["run_id"], r["status"], r["step"]) for r in upd["rows"]] == [
            (first.name, "completed", 5)]

        second = make_run(home, name="stream-b", status="pending",
                          rid=run_id(prefix="20990101-0000"))
        upd = next(messages)
        assert [r["run_id"] for r in upd["rows"]] == [second.name]
        assert upd["total"] == 2


def test_requests_without_the_token_are_refused(server, listed):  # noqa: F811
    for method, path in [("GET", "runs"), ("GET", f"runs/{listed['done'].name}"),
                         ("GET", "events"), ("POST", f"runs/{listed['pending'].name}/cancel")]:
        reply = server.request(method, "/tunixrt/api/" + path, token=False)
        assert reply.status == 403, (method, path, reply.status)
    bad = server.request("GET", "/tunixrt/api/runs", token=False,
                         headers={"Authorization": "token wrong"})
    assert bad.status == 403
    assert current_status(listed["pending"]) == "pending"  # the refused cancel did nothing


def test_cookie_sessions_need_the_xsrf_token_to_post(server, listed):  # noqa: F811
    """A browser session (login cookie, no token header) must send X-XSRFToken on POST."""
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{server.url}/login?next=%2Fapi%2Fstatus", timeout=10).read()
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    login = urllib.request.Request(
        f"{server.url}/login?next=%2Fapi%2Fstatus", method="POST",
        data=f"password={server.token}&_xsrf={xsrf}".encode())
    opener.open(login, timeout=10).read()
    assert opener.open(f"{server.url}/tunixrt/api/runs", timeout=10).status == 200

    target = listed["pending"].name
    no_xsrf = urllib.request.Request(f"{server.url}/tunixrt/api/runs/{target}/cancel",
                                     method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(no_xsrf, timeout=10)
    assert err.value.code == 403
    assert current_status(listed["pending"]) == "pending"
