"""End to end with the real engine: %tunix_run -> live RunWidget -> Cancel -> %tunix_runs.

Real Tunix training (tiny model on CPU), a real subprocess worker, the real server
extension for the REST cancel. Slow (about a minute); skipped without tunix or Chromium.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path(os.environ.get("NBBROWSER_CHROMIUM", "/usr/lib/chromium/chromium"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} missing: run tools/setup_browser.sh (apt chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("tunix") is None,
                       reason='needs tunix: pip install "tunixrt-jupyter[tunix]"'),
]


def _views(br) -> list[dict]:
    return br.page.evaluate("""() => [...document.querySelectorAll('.trx-run')].map(r => ({
        badge: r.querySelector('.trx-badge').textContent,
        name: r.querySelector('.trx-name').textContent,
        points: +r.querySelector('.trx-chart').dataset.points,
        lines: r.querySelectorAll('.trx-line').length,
        progress: r.querySelector('.trx-progress-text').textContent,
        summary: !r.querySelector('.trx-summary').hidden,
        via: r.dataset.cancelVia || null}))""")


def _wait(br, pred, what: str, timeout: float = 240.0) -> list[dict]:
    end = time.monotonic() + timeout
    while True:
        views = _views(br)
        if pred(views):
            return views
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}: {views}")
        br.page.wait_for_timeout(200)


def test_tunix_run_widget_end_to_end(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import nbbrowser

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    monkeypatch.delenv("TUNIXRT_HOME", raising=False)
    monkeypatch.delenv("TUNIXRT_RENDERER", raising=False)
    ARTIFACTS.mkdir(exist_ok=True)
    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (
        "%load_ext tunixrt",
        "r1 = %tunix_run --name tiny-sft --max-steps 30",
        "r2 = %tunix_run --name to-cancel --max-steps 3000",
    )]
    nbformat.write(nb, root / "e2e.ipynb")
    with nbbrowser.JupyterServer(
            app="lab", root_dir=root,
            extra_args=("--ServerApp.jpserver_extensions=tunixrt_jupyter.server=True",)) as srv, \
            nbbrowser.NotebookBrowser(srv, viewport=(1300, 1000)) as br:
        br.open("e2e.ipynb")
        # Under pytest %tunix_run blocks until its run ends (PYTEST_CURRENT_TEST reaches the
        # kernel: batch mode), so run-all is started, not awaited, and the widgets are
        # watched while their cells still run.
        br.page.evaluate("() => { window.jupyterapp.commands.execute("
                         "'notebook:run-all-cells'); }")
        views = _wait(br, lambda v: len(v) >= 1, "the first run widget", 120)
        assert views[0]["name"] == "tiny-sft"
        views = _wait(br, lambda v: v[0]["badge"] == "running" and v[0]["points"] >= 3,
                      "live points of the first run while its cell blocks")
        views = _wait(br, lambda v: len(v) == 2, "two run widgets")
        assert views[0]["name"] == "tiny-sft" and views[1]["name"] == "to-cancel"
        # max_concurrent=1: the second run waits as pending until the first is done
        views = _wait(br, lambda v: v[0]["badge"] == "completed" and v[0]["summary"],
                      "the first run to complete")
        assert views[0]["points"] >= 30 and views[0]["lines"] > 0
        assert "30 / 30" in views[0]["progress"]
        views = _wait(br, lambda v: v[1]["badge"] == "running" and v[1]["points"] >= 3,
                      "the second run to train a few steps")
        br.screenshot(ARTIFACTS / "e2e_running.png")
        second = br.page.locator(".trx-run").nth(1)
        second.locator(".trx-cancel").click()
        second.locator(".trx-confirm-yes").click()
        views = _wait(br, lambda v: v[1]["badge"] == "cancelled", "the real run cancelled", 90)
        assert views[1]["via"] == "rest"  # the kernel is busy in r2.wait(): REST, not comm
        br.wait_idle(timeout_s=120)
        out = br.append_and_run("%tunix_runs")
        br.page.locator(".trx-runs .trx-run-row").nth(1).wait_for(timeout=30_000)
        rows = br.page.evaluate("""() => [...document.querySelectorAll('.trx-run-row')]
            .map(r => r.querySelector('.trx-badge').textContent)""")
        assert sorted(rows) == ["cancelled", "completed"], (rows, out)
        br.screenshot(ARTIFACTS / "e2e_after_cancel.png")
