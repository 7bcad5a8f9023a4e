"""What shows without a live kernel (saved notebook), and the non-anywidget renderers."""

from __future__ import annotations

import io
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from widget_helpers import ROOT, RunFolder, deadline_wait


def _finished_run(tmp_path: Path, status: str = "completed") -> RunFolder:
    rf = RunFolder(tmp_path / "home")
    rf.event("status", status="pending")
    rf.event("status", status="running", platform="cpu")
    rf.steps(1, 40)
    rf.log("training done")
    rf.event("checkpoint", step=40, path=str(rf.dir / "checkpoints" / "40"))
    rf.event("status", status=status, **({"error": "boom: out of memory"}
                                         if status == "failed" else {}))
    return rf


def test_saved_notebook_has_static_html_and_plain_repr(tmp_path: Path):
    rf = _finished_run(tmp_path)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from tunixrt_jupyter.widgets import RunWidget\n"
        f"RunWidget({str(rf.dir)!r})")]
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env_path) if p)
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ["PYTHONPATH"] = env_path
    saved = tmp_path / "saved.ipynb"
    nbformat.write(nb, saved)
    out = nbformat.read(saved, as_version=4).cells[0].outputs[0]
    data = out["data"]
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"] == "RunWidget(run=abcdef, status=completed)"
    html = data["text/html"]
    assert "data-status='completed'" in html and ">completed</span>" in html
    assert "step 40 / 40" in html
    assert "data:image/svg+xml;base64," in html  # the train-loss sparkline (an <img>)
    assert "0.1250" in html  # last train loss 5/40
    assert "checkpoints/40" in html


def test_failed_run_static_html_shows_error_and_last_lines(tmp_path: Path):
    from tunixrt_jupyter.widgets import RunWidget

    rf = _finished_run(tmp_path, "failed")
    w = RunWidget(rf.dir, live=False)
    try:
        html = w.static_html()
        assert "boom: out of memory" in html and "training done" in html
        assert repr(w) == "RunWidget(run=abcdef, status=failed)"
    finally:
        w.close()


def test_text_renderer_prints_status_lines(tmp_path: Path):
    from tunixrt_jupyter.widgets import make_run_view

    rf = RunFolder(tmp_path / "home")
    rf.event("status", status="pending")
    buf = io.StringIO()
    view = make_run_view(rf.dir, renderer="text", stream=buf, interval=0.05)
    try:
        deadline_wait(lambda: "pending" in buf.getvalue(), 10, "pending line")
        rf.event("status", status="running")
        rf.steps(1, 40)
        deadline_wait(lambda: "running" in buf.getvalue(), 10, "running line")
        rf.event("status", status="completed")
        deadline_wait(lambda: "final loss 0.1250" in buf.getvalue(), 10, "summary line")
        assert "completed" in buf.getvalue()
        assert repr(view).startswith("[abcdef] completed")
    finally:
        view.stop()


def test_ipywidgets_renderer_follows_the_folder(tmp_path: Path):
    pytest.importorskip("ipywidgets")
    from tunixrt_jupyter.widgets import make_run_view

    rf = RunFolder(tmp_path / "home")
    rf.event("status", status="pending")
    view = make_run_view(rf.dir, renderer="ipywidgets", interval=0.05)
    try:
        rf.event("status", status="running")
        rf.steps(1, 20)
        rf.log("hello from the worker")
        deadline_wait(lambda: view._bar.value == 20 and view._bar.max == 40, 10, "progress bar")
        deadline_wait(lambda: "hello from the worker" in view._logs.value, 10, "log tail")
        assert "running" in view._head.value
        rf.event("status", status="completed")
        deadline_wait(lambda: "completed" in view._head.value, 10, "completed badge")
        assert view._cancel.layout.display == "none"
        data, _ = view._repr_mimebundle_()
        assert "text/html" in data and data["text/plain"].startswith("IpywidgetsRunView(run=")
    finally:
        view.stop()


def test_renderer_choice_env_override_and_explicit(monkeypatch):
    from tunixrt_jupyter.widgets import choose_renderer

    monkeypatch.setenv("TUNIXRT_RENDERER", "text")
    assert choose_renderer()[0] == "text"
    assert choose_renderer("ipywidgets")[0] == "ipywidgets"
    monkeypatch.setenv("TUNIXRT_RENDERER", "ipywidgets")
    assert choose_renderer() == ("ipywidgets", "TUNIXRT_RENDERER")
    with pytest.raises(ValueError):
        choose_renderer("canvas")
