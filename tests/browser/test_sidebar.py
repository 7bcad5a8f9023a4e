"""The "Tunix Runs" JupyterLab sidebar in a real Chromium: rows, live updates, Cancel, copy.

JupyterLab runs with the built prebuilt extension (``tunixrt_jupyter/labextension``, found
through ``JUPYTER_PATH``) and the server extension enabled on the command line; the runs
are hand-written folders in ``<root>/.tunixrt`` (the server's default home), one of them
recorded with a real sleeping process group so Cancel has something to stop.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "server"))
sys.path.insert(0, str(ROOT / "tools"))  # nbbrowser, the real-browser harness

from tunixrt_testserver import EXT_ARG, live_run, make_run, run_id, wait_for  # noqa: E402

from tunixrt_jupyter.events import append_event, current_status  # noqa: E402

CHROMIUM = Path("/usr/lib/chromium/chromium")
BUILT = ROOT / "tunixrt_jupyter" / "labextension"
ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian chromium: run tools/setup_browser.sh (make browser)"),
    pytest.mark.skipif(not (BUILT / "package.json").exists(),
                       reason="labextension not built: make labextension "
                              "(cd labextension && npm install && npm run build:prod)"),
]

NOTEBOOK = {
    "cells": [{"cell_type": "markdown", "metadata": {},
               "source": ["# Training\n", "Runs started here show up in the Tunix Runs sidebar."]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}

ITEM = '.jp-TunixRuns-item[data-run-id="{}"]'


def _with_extensions(mp: pytest.MonkeyPatch, tmp: Path) -> None:
    """Make the built labextension visible (JUPYTER_PATH) and use the default home."""
    jpath = tmp / "jupyter_path"
    (jpath / "labextensions").mkdir(parents=True)
    name = json.loads((BUILT / "package.json").read_text())["name"]
    (jpath / "labextensions" / name).symlink_to(BUILT, target_is_directory=True)
    mp.setenv("JUPYTER_PATH", str(jpath))
    mp.delenv("TUNIXRT_HOME", raising=False)  # the server's default: <root_dir>/.tunixrt


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab (server + browser) with both extensions; yields (server, browser, home)."""
    from nbbrowser import JupyterServer, NotebookBrowser

    tmp = tmp_path_factory.mktemp("sidebar")
    mp = pytest.MonkeyPatch()
    _with_extensions(mp, tmp)
    srv = JupyterServer(app="lab", root_dir=tmp / "root", extra_args=(EXT_ARG,))
    home = srv.root_dir / ".tunixrt"
    (home / "runs").mkdir(parents=True)
    (srv.root_dir / "train.ipynb").write_text(json.dumps(NOTEBOOK))
    try:
        srv.start()
        with NotebookBrowser(srv) as br:
            yield srv, br, home
    finally:
        srv.stop()
        mp.undo()


def badge(page, rid: str) -> str:
    loc = page.locator(ITEM.format(rid) + " .jp-TunixRuns-badge")
    return loc.inner_text() if loc.count() else ""


def wait_badge(page, rid: str, status: str, timeout_ms: int = 15_000) -> None:
    page.wait_for_function(
        """([sel, status]) => { const b = document.querySelector(sel);
                                return b && b.textContent === status; }""",
        arg=[ITEM.format(rid) + " .jp-TunixRuns-badge", status], timeout=timeout_ms)


def open_sidebar(page) -> None:
    """Click the sidebar's tab (as a user would) until the panel shows: a click on the tab
    of an already open panel collapses it, so look before each click."""
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="tunixrt-runs"]')
    panel = page.locator("#tunixrt-runs.jp-TunixRuns")
    tab.wait_for(state="visible")
    for _ in range(3):
        if panel.is_visible():
            return
        tab.click()
        try:
            panel.wait_for(state="visible", timeout=5_000)
            return
        except PlaywrightTimeout:
            continue
    panel.wait_for(state="visible")


def test_sidebar_lists_updates_and_cancels(lab):
    srv, br, home = lab
    done = make_run(home, name="sft-lora-r8", steps=40, total=40, losses=[2.1, 1.4, 0.8732])
    failed = make_run(home, name="gemma-2b-sweep", status="failed", steps=7, total=60,
                      losses=[3.2, 2.9])
    queued = make_run(home, name="queued-run", status="pending", total=20)
    live = live_run(home, "long-llama-run", steps=12, total=100, losses=[1.9, 1.7, 1.6])
    try:
        br.open("train.ipynb")
        page = br.page
        open_sidebar(page)

        # rows for every hand-written run, newest first, status badges and numbers
        for d in (done, failed, queued, live.dir):
            page.locator(ITEM.format(d.name)).wait_for(state="visible")
        assert badge(page, done.name) == "completed"
        assert badge(page, failed.name) == "failed"
        assert badge(page, queued.name) == "pending"
        assert badge(page, live.dir.name) == "running"
        done_row = page.locator(ITEM.format(done.name)).inner_text()
        assert "sft-lora-r8" in done_row and "step 40/40" in done_row and "loss 0.8732" in done_row
        order = page.eval_on_selector_all(".jp-TunixRuns-item",
                                          "els => els.map(e => e.dataset.runId)")
        assert order == [live.dir.name, queued.name, failed.name, done.name]
        page.locator(".jp-TunixRuns-live[data-mode='live']").wait_for()
        # Cancel only on active runs
        assert page.locator(ITEM.format(done.name) + " .jp-TunixRuns-cancel").is_hidden()
        assert page.locator(ITEM.format(live.dir.name) + " .jp-TunixRuns-cancel").is_visible()

        # a status change in a run folder appears live (event stream)
        append_event(queued, "status", status="running", platform="cpu")
        append_event(queued, "progress", step=5, total=20)
        append_event(queued, "metric", name="train/loss", value=1.25, step=5)
        wait_badge(page, queued.name, "running")
        page.wait_for_function(
            "sel => document.querySelector(sel).textContent.includes('step 5/20')",
            arg=ITEM.format(queued.name))
        # a new run appears at the top without a reload
        newer = make_run(home, name="fresh-run", status="running", steps=1, total=10,
                         rid=run_id(prefix="20990101-0000"))
        page.locator(ITEM.format(newer.name)).wait_for(state="visible")
        first = page.eval_on_selector(".jp-TunixRuns-item", "e => e.dataset.runId")
        assert first == newer.name

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "sidebar.png"))
        page.locator("#tunixrt-runs").screenshot(path=str(ARTIFACTS / "sidebar-panel.png"))

        # Cancel: POST through the server (not a kernel), the process group goes away
        page.locator(ITEM.format(live.dir.name) + " .jp-TunixRuns-cancel").click()
        wait_for(live.gone, timeout=30, what="the cancelled run's process group to be gone")
        wait_badge(page, live.dir.name, "cancelled", timeout_ms=30_000)
        assert current_status(live.dir) == "cancelled"
        assert page.locator(ITEM.format(live.dir.name) + " .jp-TunixRuns-cancel").is_hidden()

        # click a row: copies %tunix_show <id> (and says so)
        page.locator(ITEM.format(done.name) + " .jp-TunixRuns-name").click()
        page.locator(".Toastify__toast", has_text=f"%tunix_show {done.name}").wait_for()
        page.wait_for_timeout(700)  # cosmetic: let the toast slide in before the screenshot
        page.screenshot(path=str(ARTIFACTS / "sidebar-after-cancel.png"))

        # the other runs stay untouched
        assert current_status(queued) == "running" and current_status(done) == "completed"
        footer = page.locator(".jp-TunixRuns-footer").inner_text()
        assert re.search(r"\b5 runs\b", footer), footer
        benign = re.compile(r"reading 'schema'")
        errors = [e for e in br.page_errors if not benign.search(e)]
        assert not errors, errors
        assert not br.blocked_requests, br.blocked_requests
        append_event(newer, "status", status="completed")
        append_event(queued, "status", status="completed")
    finally:
        live.kill()


def test_sidebar_falls_back_to_polling(lab):
    """With the event stream blocked, the list still updates (GET runs every 2 s)."""
    srv, br, home = lab
    page = br.page
    page.route("**/tunixrt/api/events**", lambda route: route.abort())
    try:
        page.reload()
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell")
        open_sidebar(page)
        page.locator(".jp-TunixRuns-live[data-mode='polling']").wait_for()
        run = make_run(home, name="polled-run", status="pending", total=10,
                       rid=run_id(prefix="20990102-0000"))
        page.locator(ITEM.format(run.name)).wait_for(state="visible")
        append_event(run, "status", status="running")
        wait_badge(page, run.name, "running")
        append_event(run, "status", status="failed", error="boom")
        wait_badge(page, run.name, "failed")
        assert page.locator(ITEM.format(run.name) + " .jp-TunixRuns-error").inner_text() == "boom"
        page.locator("#tunixrt-runs").screenshot(path=str(ARTIFACTS / "sidebar-polling.png"))
    finally:
        page.unroute("**/tunixrt/api/events**")

