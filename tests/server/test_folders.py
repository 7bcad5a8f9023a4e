"""Folder-read rows (the event stream's source and the no-catalog fallback), and homes."""

from __future__ import annotations

import pytest
from tunixrt_testserver import make_run

from tunixrt_jupyter.events import append_event
from tunixrt_jupyter.home import Home
from tunixrt_jupyter.server import handlers
from tunixrt_jupyter.server.folders import FolderRows, jsonable
from tunixrt_jupyter.server.homes import HomeError, HomeResolver


def test_rows_follow_appends_incrementally(tmp_path):
    home = Home(tmp_path / "h")
    run_dir = make_run(home.root, name="inc", status="running", steps=2, total=8, losses=[2.0])
    rows = FolderRows(home)
    row = rows.row(run_dir.name)
    assert (row["status"], row["step"], row["total_steps"], row["final_loss"]) == (
        "running", 2, 8, 2.0)
    assert row["name"] == "inc" and row["model"] == "tiny" and row["executor"] == "subprocess"
    tail = rows._entries[run_dir.name].tail
    offset = tail._offsets["events.jsonl"]
    append_event(run_dir, "metric", name="train/loss", value=1.0, step=3)
    append_event(run_dir, "metric", name="eval/loss", value=1.5, step=3)
    append_event(run_dir, "status", status="completed")
    row = rows.row(run_dir.name)
    assert tail._offsets["events.jsonl"] > offset  # read on from where it was
    assert (row["status"], row["final_loss"], row["best_eval_loss"]) == ("completed", 1.0, 1.5)
    assert row["duration_s"] is not None and row["duration_s"] >= 0


def test_query_filters_sorts_and_pages_like_the_catalog(tmp_path):
    home = Home(tmp_path / "h")
    a = make_run(home.root, name="alpha", losses=[3.0])
    b = make_run(home.root, name="beta", status="failed", losses=[1.0])
    c = make_run(home.root, name="alpha-2", status="pending")
    rows = FolderRows(home)

    got, total = rows.query()
    assert total == 3 and [r["run_id"] for r in got] == [c.name, b.name, a.name]
    got, total = rows.query(status=["completed", "failed"])
    assert total == 2 and {r["run_id"] for r in got} == {a.name, b.name}
    got, _ = rows.query(name="ALPHA")
    assert {r["name"] for r in got} == {"alpha", "alpha-2"}
    got, _ = rows.query(sort="final_loss")  # ascending, runs without a loss last
    assert [r["run_id"] for r in got] == [b.name, a.name, c.name]
    got, _ = rows.query(sort="-final_loss")
    assert [r["run_id"] for r in got] == [a.name, b.name, c.name]
    page1, total = rows.query(limit=2)
    page2, _ = rows.query(limit=2, offset=2)
    assert total == 3 and len(page1) == 2 and len(page2) == 1
    with pytest.raises(ValueError, match="cannot sort"):
        rows.query(sort="nope")


def test_vanished_and_damaged_folders(tmp_path):
    home = Home(tmp_path / "h")
    run_dir = make_run(home.root, name="x")
    (run_dir / "config.yaml").write_text(": not yaml : [")
    rows = FolderRows(home)
    row = rows.row(run_dir.name)
    assert row["status"] == "completed" and row["name"] == "tiny-tiny"
    for p in run_dir.iterdir():
        p.unlink()
    run_dir.rmdir()
    assert rows.row(run_dir.name) is None
    assert rows.run_ids() == []


def test_json_without_nan():
    assert jsonable({"a": float("nan"), "b": [float("inf"), 1.5], "c": None}) == {
        "a": "nan", "b": ["inf", 1.5], "c": None}


def test_list_falls_back_to_folders_when_the_catalog_fails(tmp_path, monkeypatch):
    from tunixrt_jupyter import api

    home = Home(tmp_path / "root" / ".tunixrt")
    run_dir = make_run(home.root, name="fallback", losses=[0.5])

    def broken(**_kw):
        raise RuntimeError("catalog is busy")

    monkeypatch.setattr(api, "runs", broken)
    out = handlers._list_runs(HomeResolver(tmp_path / "root", env_home=""), home, {},
                              "-created_at", 10, 0)
    assert out["source"] == "folders" and "catalog is busy" in out["catalog_error"]
    assert [r["run_id"] for r in out["rows"]] == [run_dir.name] and out["total"] == 1
    assert out["home"] == ".tunixrt"


def test_home_resolution(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "sub" / ".tunixrt" / "runs").mkdir(parents=True)
    (root / "deep" / "er" / ".tunixrt" / "runs").mkdir(parents=True)
    (root / "node_modules" / "x" / ".tunixrt" / "runs").mkdir(parents=True)
    monkeypatch.delenv("TUNIXRT_HOME", raising=False)
    r = HomeResolver(root)
    assert r.default.root == root.resolve() / ".tunixrt"
    assert r.resolve(None) == r.default and r.resolve("") == r.default
    assert r.resolve("sub").root == (root / "sub" / ".tunixrt").resolve()
    assert r.resolve("sub/.tunixrt").root == (root / "sub" / ".tunixrt").resolve()
    assert r.resolve("new-place").root == (root / "new-place").resolve()  # may not exist yet
    for bad in ("..", "../elsewhere", "/etc", "sub/../../x"):
        with pytest.raises(HomeError):
            r.resolve(bad)
    assert r.label(r.resolve("sub")) == "sub/.tunixrt"
    found = [r.label(h) for h in r.discover()]
    assert found == [".tunixrt", "deep/er/.tunixrt", "sub/.tunixrt"]

    other = tmp_path / "other-home"
    (other / "runs").mkdir(parents=True)
    assert r.resolve(str(other)).root == other.resolve()  # an absolute, existing home
    assert r.resolve(str(root / "sub" / ".tunixrt")).root == (root / "sub/.tunixrt").resolve()
    with pytest.raises(HomeError):
        r.resolve(str(tmp_path))  # absolute, outside root and not a home

    outside = tmp_path / "elsewhere"
    monkeypatch.setenv("TUNIXRT_HOME", str(outside))
    r = HomeResolver(root)
    assert r.default.root == outside.resolve()
    assert r.resolve(str(outside)) == r.default  # the default is allowed even outside root
    assert r.label(r.default) == str(outside.resolve())
