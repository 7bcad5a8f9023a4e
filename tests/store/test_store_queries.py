"""History queries: each filter, OR of values, sorting, paging, prefix lookup, series, logs."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from store_helpers import T0, append_events, append_raw, make_run, status

from tunixrt_jupyter.store import Catalog

# run id -> (config kwargs, final status, created offset from T0, final train/loss)
RUNS = {
    "20250601-000000-aaaa01": (dict(name="baseline tiny", tags=["base"], family="tiny",
                                    mode="local"), "completed", 0, 2.0),
    "20250601-000100-bbbb02": (dict(name="LoRA sweep 1", tags=["sweep", "lora"],
                                    family="llama3", model_id="meta-llama/Llama-3.2-1B",
                                    source="jsonl", path="/data/chat.jsonl"), "failed", 100, 1.5),
    "20250601-000200-cccc03": (dict(name="lora sweep 2", tags=["sweep"], family="gemma3",
                                    source="jsonl", path="/data/chat.jsonl"), "completed", 200,
                               1.2),
    "20250601-000300-dddd04": (dict(name="dry check", tags=[], family="tiny", mode="dry-run"),
                               "completed", 300, None),
    "20250601-000400-eeee05": (dict(name="100%_done?", tags=["base", "x"], family="qwen3",
                                    executor="kernel"), "running", 400, 3.0),
}


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    home = tmp_path_factory.mktemp("queries")
    for rid, (cfg, final, dt, loss) in RUNS.items():
        run = make_run(home, rid, **cfg)
        t = T0 + dt
        events = [status("pending", t), status("running", t + 1)]
        if loss is not None:
            events += [{"t": t + 2 + i, "type": "metric", "name": "train/loss",
                        "value": round(loss + 1 - i / 2, 6), "step": i} for i in range(3)]
            events += [{"t": t + 3, "type": "metric", "name": "eval/loss", "value": loss + 0.1,
                        "step": 2}]
        events += [{"t": t + 6, "type": "artifact", "name": "manifest.yaml", "kind": "manifest",
                    "path": str(run / "manifest.yaml"), "bytes": 42}]
        if final != "running":
            events.append(status(final, t + 10, **({"error": "OOM"} if final == "failed" else {})))
        append_events(run, events)
        append_raw(run, "stdout.log", "".join(f"{rid} out {i}\n" for i in range(150)))
        append_raw(run, "stderr.log", "".join(f"{rid} err {i}\n" for i in range(5)))
    catalog = Catalog(home)
    catalog.ingest()
    return catalog


def ids(result) -> list[str]:
    rows, _total = result
    return [r["run_id"][-2:] for r in rows]


def test_default_listing_newest_first(cat):
    rows, total = cat.list_runs()
    assert total == 5 and ids((rows, total)) == ["05", "04", "03", "02", "01"]
    assert "config_json" not in rows[0] and rows[0]["tags"] == ["base", "x"]


def test_each_filter_and_or_of_values(cat):
    assert ids(cat.list_runs(status="completed")) == ["04", "03", "01"]
    assert ids(cat.list_runs(status=["failed", "running"])) == ["05", "02"]
    assert ids(cat.list_runs(mode="dry-run")) == ["04"]
    assert ids(cat.list_runs(model="tiny")) == ["04", "01"]
    assert ids(cat.list_runs(model="meta-llama/Llama-3.2-1B")) == ["02"]
    assert ids(cat.list_runs(model="LLAMA3")) == ["02"]  # the family matches too
    assert ids(cat.list_runs(model=["gemma3", "qwen3"])) == ["05", "03"]
    assert ids(cat.list_runs(dataset="chat.jsonl")) == ["03", "02"]
    assert ids(cat.list_runs(dataset=["tiny"])) == ["05", "04", "01"]
    assert ids(cat.list_runs(dataset="jsonl")) == ["03", "02"]  # the source matches too
    assert ids(cat.list_runs(tags="sweep")) == ["03", "02"]
    assert ids(cat.list_runs(tags=["lora", "x"])) == ["05", "02"]
    assert ids(cat.list_runs(name="LORA")) == ["03", "02"]
    assert ids(cat.list_runs(name=["sweep 1", "dry"])) == ["04", "02"]
    assert ids(cat.list_runs(name="100%_")) == ["05"]  # LIKE wildcards are literal
    assert ids(cat.list_runs(name="%done")) == []
    assert ids(cat.list_runs(since=T0 + 200)) == ["05", "04", "03"]
    assert ids(cat.list_runs(until=T0 + 100)) == ["02", "01"]
    iso = datetime.fromtimestamp(T0 + 150, timezone.utc).isoformat()
    assert ids(cat.list_runs(since=iso, until=T0 + 300)) == ["04", "03"]
    assert ids(cat.list_runs(since="1h")) == []  # relative: created within the last hour
    assert ids(cat.list_runs(status="completed", tags="sweep", model="gemma3")) == ["03"]


def test_sort_and_paging(cat):
    assert ids(cat.list_runs(sort="created_at")) == ["01", "02", "03", "04", "05"]
    assert ids(cat.list_runs(sort="final_loss")) == ["03", "02", "01", "05", "04"]  # nulls last
    assert ids(cat.list_runs(sort="-final_loss")) == ["05", "01", "02", "03", "04"]
    assert ids(cat.list_runs(sort="name")) == ["05", "02", "01", "04", "03"]
    page1 = cat.list_runs(limit=2)
    page3 = cat.list_runs(limit=2, offset=4)
    assert ids(page1) == ["05", "04"] and page1[1] == 5
    assert ids(page3) == ["01"] and page3[1] == 5
    assert cat.list_runs(limit=2, offset=10) == ([], 5)
    assert len(cat.list_runs(limit=None)[0]) == 5


def test_bad_sort_field_names_the_allowed_ones(cat):
    with pytest.raises(ValueError, match=r"cannot sort runs by 'loss'.*final_loss"):
        cat.list_runs(sort="-loss")
    with pytest.raises(ValueError, match="created_at"):
        cat.list_runs(sort="created_at; DROP TABLE runs")
    with pytest.raises(ValueError, match="not a time"):
        cat.list_runs(since="yesterday-ish")


def test_get_run_by_id_prefix_and_short_id(cat):
    full = "20250601-000100-bbbb02"
    assert cat.get_run(full)["run_id"] == full
    assert cat.get_run("20250601-0001")["run_id"] == full
    assert cat.get_run("bbbb02")["run_id"] == full  # the short id (suffix)
    row = cat.get_run(full)
    assert row["status"] == "failed" and row["error"] == "OOM"
    assert row["config"]["dataset"]["path"] == "/data/chat.jsonl"
    with pytest.raises(KeyError, match="ambiguous"):
        cat.get_run("20250601-")
    with pytest.raises(KeyError, match="no run"):
        cat.get_run("zzzz")


def test_metric_series_and_names(cat):
    assert cat.metric_names("cccc03") == ["eval/loss", "train/loss"]
    series = cat.metric_series("cccc03", "/train/loss")
    assert [(p["step"], p["value"]) for p in series] == [(0, 2.2), (1, 1.7), (2, 1.2)]
    assert len(cat.metric_series("cccc03")) == 4
    assert cat.metric_series("dddd04") == []


def test_logs_last_n_in_order(cat):
    lines = cat.logs("aaaa01", n=3, stream="stdout")
    assert [r["line"] for r in lines] == [f"20250601-000000-aaaa01 out {i}" for i in (147, 148,
                                                                                    149)]
    both = cat.logs("aaaa01", n=1000)
    assert len(both) == 155 and [r["seq"] for r in both] == sorted(r["seq"] for r in both)
    assert {r["line"].split()[0] for r in both} == {"20250601-000000-aaaa01"}
    assert [r["stream"] for r in cat.logs("aaaa01", n=5, stream="stderr")] == ["stderr"] * 5
    assert cat.logs("aaaa01", n=0) == []


def test_artifacts_transitions_compare(cat):
    arts = cat.artifacts("bbbb02")
    assert [(a["name"], a["kind"], a["bytes"]) for a in arts] == [("manifest.yaml", "manifest",
                                                                    42)]
    assert [t["status"] for t in cat.transitions("bbbb02")] == ["pending", "running", "failed"]
    both = cat.compare(["cccc03", "bbbb02"])
    assert [r["run_id"][-2:] for r in both] == ["03", "02"]
    assert both[0]["metrics"]["train/loss"] == {"last": 1.2, "min": 1.2, "max": 2.2, "count": 3,
                                                "last_step": 2}
    assert both[1]["metrics"]["eval/loss"]["last"] == 1.6
    assert cat.compare([]) == []
