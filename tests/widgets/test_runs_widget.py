"""RunsWidget: server-side sort/filter/paging, compare, open; folder query; static table."""

from __future__ import annotations

from pathlib import Path

import pytest
from widget_helpers import RunFolder, deadline_wait

from tunixrt_jupyter.widgets.runs_widget import FolderQuery, RunsWidget, config_diff


def _history(home: Path) -> list[str]:
    """Five runs: different statuses, steps and learning rates."""
    ids = []
    for i, status in enumerate(["completed", "failed", "completed", "cancelled", "running"]):
        rf = RunFolder(home, f"2025010{i + 1}-120000-cafe{i:02d}")
        lr = 3e-3 if i % 2 == 0 else 1e-3
        (rf.dir / "config.yaml").write_text(
            f"name: run-{i}\nmodel: {{family: tiny}}\ndataset: {{source: tiny}}\n"
            f"training: {{max_steps: 40, learning_rate: {lr}}}\nrun: {{mode: local}}\n")
        rf.event("status", status="pending")
        rf.event("status", status="running")
        rf.steps(1, 8 + i * 4)
        if status != "running":
            rf.event("status", status=status)
        ids.append(rf.run_id)
    return ids


def test_folder_query_sorts_filters_and_pages(tmp_path: Path):
    home = tmp_path / "home"
    ids = _history(home)
    q = FolderQuery(home)
    rows, total = q(sort="-created_at", limit=2, offset=0)
    assert total == 5 and len(rows) == 2
    rows, _ = q(sort="step", limit=None)
    assert [r["step"] for r in rows] == [8, 12, 16, 20, 24]
    rows, total = q(status=["completed"], limit=None)
    assert total == 2 and {r["run_id"] for r in rows} == {ids[0], ids[2]}
    rows, total = q(name="run-3")
    assert total == 1 and rows[0]["status"] == "cancelled"
    rows, total = q(model="TINY", limit=None)
    assert total == 5
    rows, _ = q(sort="-final_loss", limit=1)
    assert rows[0]["run_id"] == ids[0]  # fewest steps -> highest last loss


def test_config_diff_keeps_only_differing_keys():
    diff = config_diff({"a": {"x": 1, "t": {"lr": 1, "bs": 8}}, "b": {"x": 1, "t": {"lr": 2,
                                                                                   "bs": 8}}})
    assert diff == [{"key": "t.lr", "values": {"a": 1, "b": 2}}]


def test_runs_widget_query_compare_and_static_table(tmp_path: Path):
    home = tmp_path / "home"
    ids = _history(home)
    w = RunsWidget(query=FolderQuery(home), home=home, page_size=2)
    try:
        assert w.total == 5 and len(w.rows) == 2
        w._on_custom(w, {"type": "query", "sort": "step", "offset": 2, "limit": 2,
                         "filters": {}}, [])
        assert [r["step"] for r in w.rows] == [16, 20] and w.query["offset"] == 2
        w._on_custom(w, {"type": "query", "filters": {"status": ["failed"]}, "offset": 0}, [])
        assert w.total == 1 and w.rows[0]["run_id"] == ids[1]
        # a page past the end after filtering snaps back to the last page
        w._on_custom(w, {"type": "query", "filters": {}, "offset": 40}, [])
        assert w.query["offset"] == 4 and len(w.rows) == 1
        w.run_query(sort="nonsense")
        assert w.error == ""  # folder query sorts unknown keys as missing, never fails
        cmp = w.compare([ids[0], ids[1]])
        assert [r["run_id"] for r in cmp["runs"]] == [ids[0], ids[1]]
        assert len(cmp["runs"][0]["series"]["train/loss"]) == 8
        assert len(cmp["runs"][1]["series"]["eval/loss"]) == 1
        keys = {d["key"] for d in cmp["diff"]}
        assert keys == {"name", "training.learning_rate"}
        html = w._repr_mimebundle_()[0]["text/html"]
        assert "<table" in html and "of 5 runs" in html
    finally:
        w.close()


def test_runs_widget_messages_in_kernel(kernel, tmp_path: Path):
    home = tmp_path / "home"
    ids = _history(home)
    out = kernel.execute(
        "from IPython.display import display\n"
        "from tunixrt_jupyter.widgets.runs_widget import RunsWidget, FolderQuery\n"
        f"rw = RunsWidget(query=FolderQuery({str(home)!r}), home={str(home)!r}, page_size=3)\n"
        "display(rw)\n"
        "print(rw.comm.comm_id)\n")
    cid = out.strip().splitlines()[-1]
    kernel.send_custom(cid, {"type": "query", "sort": "-step", "offset": 0, "limit": 3,
                             "filters": {"status": ["completed", "cancelled"]}})

    def sorted_update():
        for st in kernel.updates(cid):
            if "rows" in st and st.get("total") == 3:
                return st
        return None

    st = deadline_wait(sorted_update, 20, "filtered, sorted rows")
    assert [r["run_id"] for r in st["rows"]] == [ids[3], ids[2], ids[0]]
    assert st["query"]["sort"] == "-step"

    kernel.send_custom(cid, {"type": "compare", "run_ids": [ids[0], ids[4]], "request": 7})
    cmp = deadline_wait(lambda: kernel.customs(cid, "compare"), 20, "compare reply")[0]
    assert cmp["request"] == 7 and len(cmp["runs"]) == 2
    assert {d["key"] for d in cmp["diff"]} == {"name"}  # both ran at lr 3e-3

    kernel.send_custom(cid, {"type": "open", "run_id": ids[4]})
    opened = deadline_wait(lambda: kernel.customs(cid, "opened"), 20, "opened reply")[0]
    assert opened["shown"] is True and opened["hint"] == "%tunix_show cafe04"
    # the run's own live widget was created (shown in the Output area under the table)
    opens = [m for m in kernel.messages() if m["msg_type"] == "comm_open"
             and m["content"]["data"].get("state", {}).get("_anywidget_id", "").endswith(
                 "RunWidget")]
    assert opens and opens[-1]["content"]["data"]["state"]["run_id"] == ids[4]


@pytest.mark.parametrize("renderer", ["ipywidgets", "text"])
def test_make_runs_view_fallbacks(tmp_path: Path, renderer: str):
    from tunixrt_jupyter.widgets import make_runs_view

    home = tmp_path / "home"
    _history(home)
    rows, total = FolderQuery(home)(limit=3)

    class Result:  # what RunList exposes: rows + total
        pass

    res = Result()
    res.rows, res.total = rows, total
    view = make_runs_view(res, renderer=renderer)
    text = view.value if renderer == "ipywidgets" else repr(view)
    assert "3 of 5 runs" in text
