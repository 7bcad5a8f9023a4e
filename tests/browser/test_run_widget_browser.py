"""RunWidget in a real Chromium + JupyterLab: badge, live chart, log tail, Cancel.

The run folder is written by this test process (the "worker") while the page watches, so
what is checked is the whole path: folder -> RunTail -> kernel thread -> comm -> browser.
Screenshots go to tests/browser/artifacts/ (git-ignored) for a human look.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path(os.environ.get("NBBROWSER_CHROMIUM", "/usr/lib/chromium/chromium"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} missing: run tools/setup_browser.sh (apt chromium)"),
]

CONFIG = """\
name: browser-demo
model: {family: tiny}
dataset: {source: tiny}
training: {max_steps: 60}
run: {mode: local, executor: subprocess, platform: cpu}
"""


class Worker:
    """Plays the training process: appends events and log lines to the run folder."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.points = 0
        self.lines = 0
        self.step = 0

    def event(self, type_: str, **fields) -> None:
        from tunixrt_jupyter.events import append_event

        append_event(self.dir, type_, **fields)

    def log(self, line: str, stream: str = "stdout") -> None:
        with open(self.dir / f"{stream}.log", "a") as f:
            f.write(line + "\n")
        self.lines += 1

    def advance(self, n: int) -> None:
        import math

        for _ in range(n):
            self.step += 1
            s = self.step
            self.event("progress", step=s, total=60)
            loss = 2.0 + 3.0 * math.exp(-s / 12) + 0.08 * math.sin(s * 1.7)
            self.event("metric", name="train/loss", value=round(loss, 5), step=s)
            self.points += 1
            if s % 5 == 0:
                self.event("metric", name="eval/loss", value=round(loss + 0.15, 5), step=s)
                self.points += 1
            self.log(f"step {s:3d}  loss {loss:.4f}  lr 3.0e-03  tokens/s 1843")
            if s % 9 == 0:
                self.log(f"W1123 jax: slow compile for step fn ({s})", "stderr")


def _run_folder(root: Path) -> tuple[Path, Worker]:
    run_dir = root / ".tunixrt" / "runs" / "20251123-120000-b10c4d"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(CONFIG)
    w = Worker(run_dir)
    w.event("status", status="pending")
    w.event("status", status="running", platform="cpu")
    w.log("loading tiny model (2 layers, d=64)")
    w.advance(12)
    return run_dir, w


def _notebook(path: Path, run_dir: Path, args: str = "") -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "from tunixrt_jupyter.widgets import RunWidget\n"
        f"w = RunWidget({str(run_dir)!r}{args})\n"
        "w")]
    nbformat.write(nb, path)


def _dom(br) -> dict:
    return br.page.evaluate("""() => {
      const r = document.querySelector('.trx-run');
      if (!r) return null;
      return {badge: r.querySelector('.trx-badge').textContent,
              points: +r.querySelector('.trx-chart').dataset.points,
              lines: r.querySelectorAll('.trx-line').length,
              stderr: r.querySelectorAll('.trx-stderr').length,
              progress: r.querySelector('.trx-progress-text').textContent,
              cancelVia: r.dataset.cancelVia || null,
              msg: r.querySelector('.trx-cancel-msg').textContent};
    }""")


def _wait(br, pred, timeout_ms: int = 30_000, what: str = "") -> dict:
    """Wait (deadline, condition) for the widget's DOM state to satisfy ``pred``."""
    import time

    end = time.monotonic() + timeout_ms / 1000
    while True:
        st = _dom(br)
        if st and pred(st):
            return st
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}: {st}")
        br.page.wait_for_timeout(50)


@pytest.fixture
def harness(monkeypatch):
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import nbbrowser

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    monkeypatch.delenv("TUNIXRT_HOME", raising=False)
    ARTIFACTS.mkdir(exist_ok=True)
    return nbbrowser


@pytest.mark.parametrize(("app", "server_ext"), [("lab", False), ("lab", True),
                                                 ("notebook", False)],
                         ids=["lab-comm-cancel", "lab-rest-cancel-busy-kernel",
                              "notebook7-comm-cancel"])
def test_live_run_widget(harness, tmp_path, app, server_ext):
    if server_ext:
        pytest.importorskip("tunixrt_jupyter.server")
    root = tmp_path / "root"
    root.mkdir()
    run_dir, worker = _run_folder(root)
    _notebook(root / "run.ipynb", run_dir)
    ext = f"tunixrt_jupyter.server={server_ext}"  # traitlets Dict item on the command line
    tag = f"{app}_{'rest' if server_ext else 'comm'}"
    with harness.JupyterServer(app=app, root_dir=root, keep_tmp=False,
                               extra_args=(f"--ServerApp.jpserver_extensions={ext}",)) as srv:
        with harness.NotebookBrowser(srv, viewport=(1300, 900)) as br:
            br.open("run.ipynb")
            br.run_all()
            st = _wait(br, lambda s: s["points"] == worker.points and s["lines"] >= 13
                       and "step 12 / 60" in s["progress"], what="initial points and lines")
            assert st["badge"] == "running"
            assert st["stderr"] == 1

            # the folder keeps growing while the page watches
            stop = threading.Event()

            def grow() -> None:
                while not stop.is_set() and worker.step < 45:
                    worker.advance(1)
                    stop.wait(0.05)

            t = threading.Thread(target=grow, daemon=True)
            t.start()
            t.join(30)
            stop.set()
            st = _wait(br, lambda s: s["points"] == worker.points
                       and "step 45 / 60" in s["progress"] and s["lines"] == worker.lines,
                       what="live points and log lines while the run grows")
            assert st["stderr"] == 45 // 9
            # hover the chart: tooltip with values
            box = br.page.locator(".trx-chart-overlay").bounding_box()
            br.page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5)
            tip = br.page.locator(".trx-chart-tip")
            tip.wait_for(state="visible", timeout=5000)
            assert "train loss" in tip.inner_text()
            br.page.locator(".trx-run").screenshot(
                path=str(ARTIFACTS / f"run_widget_hover_{tag}.png"))
            br.page.mouse.move(0, 0)
            br.screenshot(ARTIFACTS / f"run_widget_running_{tag}.png")

            release = tmp_path / "release"
            if server_ext:
                # another cell keeps the kernel busy: comm messages would queue behind it,
                # the REST cancel must not (and thread pushes must still arrive)
                busy_code = ("import time, pathlib\n"
                             f"while not pathlib.Path({str(release)!r}).exists():\n"
                             "    time.sleep(0.05)\n")
                br.page.evaluate("""(code) => {
                  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                  window.__trxBusyDone = false;
                  k.requestExecute({code}).done.then(() => { window.__trxBusyDone = true; });
                }""", busy_code)
                br.page.wait_for_function("""() => window.jupyterapp.shell.currentWidget
                  .sessionContext.session.kernel.status === 'busy'""")


            # Cancel, with its confirm step
            br.page.locator(".trx-cancel").click()
            assert br.page.locator(".trx-confirm-yes").is_visible()
            br.page.locator(".trx-confirm-yes").click()
            stop_file = run_dir / "stop_request.json"
            _wait(br, lambda s: stop_file.exists(), what="stop_request.json")
            assert json.loads(stop_file.read_text())["reason"] == "cancelled"
            st = _wait(br, lambda s: s["badge"] == "cancelled", what="cancelled badge")
            assert st["cancelVia"] == ("rest" if server_ext else "comm")
            if server_ext:
                assert not release.exists()  # the busy cell cannot have ended: nothing released it
                done = br.page.evaluate("() => window.__trxBusyDone === true")
                assert not done, "cancel and the cancelled badge came while the kernel ran"
                release.touch()
                br.page.wait_for_function("() => window.__trxBusyDone === true")
                br.wait_idle()
            br.page.locator(".trx-summary").wait_for(state="visible", timeout=5000)
            br.screenshot(ARTIFACTS / f"run_widget_cancelled_{tag}.png")
            ours = [e for e in br.page_errors + br.console_errors if "trx" in e.lower()
                    or "tunixrt" in e.lower()]
            assert not ours, ours


def test_pull_only_delivery_and_page_reload(harness, tmp_path):
    """No thread pushes at all (what Colab gives: googlecolab/colabtools#3373): the view's
    polls alone keep it live; after a page reload the new view's hello refills it."""
    root = tmp_path / "root"
    root.mkdir()
    run_dir, worker = _run_folder(root)
    _notebook(root / "run.ipynb", run_dir, args=", live=False")
    with harness.JupyterServer(app="lab", root_dir=root) as srv, \
            harness.NotebookBrowser(srv, viewport=(1300, 900)) as br:
        br.open("run.ipynb")
        br.run_all()
        _wait(br, lambda s: s["points"] == worker.points, what="first points (hello)")
        worker.advance(8)
        _wait(br, lambda s: s["points"] == worker.points and s["lines"] == worker.lines
              and "step 20 / 60" in s["progress"], what="points, lines, step through polls only")
        assert not br.kernel_exec("print(w.delivering)")["output"].strip() == "True"
        br.save()  # the reloaded page shows the saved outputs, like after an autosave
        br.page.reload()
        br.page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell"
                                  " && window.jupyterapp.shell.currentWidget")
        st = _wait(br, lambda s: s["points"] == worker.points and s["lines"] == worker.lines,
                   timeout_ms=90_000, what="a reloaded page's view refilled by its hello")
        assert st["badge"] == "running"
        br.screenshot(ARTIFACTS / "run_widget_after_reload.png")


def test_saved_notebook_shows_static_card_without_kernel(harness, tmp_path):
    """Executed and saved (nbclient), reopened with no live widget model: Lab falls back to
    the text/html card; its sparkline is an <img> so the untrusted-HTML sanitiser keeps it."""
    from nbclient import NotebookClient

    root = tmp_path / "root"
    root.mkdir()
    run_dir, worker = _run_folder(root)
    worker.advance(48)
    worker.event("status", status="completed")
    nb_path = root / "saved.ipynb"
    _notebook(nb_path, run_dir)
    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(root)}}).execute()
    nbformat.write(nb, nb_path)
    with harness.JupyterServer(app="lab", root_dir=root) as srv, \
            harness.NotebookBrowser(srv, viewport=(1200, 600)) as br:
        br.open("saved.ipynb")  # not run: the kernel has no such widget model
        card = br.page.locator(".jp-OutputArea-output .tunixrt-static-run")
        card.wait_for(timeout=30_000)
        text = card.inner_text()
        assert "completed" in text and "step 60 / 60" in text
        img = br.page.locator("img.tunixrt-sparkline")
        img.wait_for(timeout=10_000)
        assert br.page.evaluate("() => document.querySelector('img.tunixrt-sparkline')"
                                ".naturalWidth") > 0
        br.screenshot(ARTIFACTS / "run_widget_saved_static.png")


def test_view_fills_while_the_displaying_cell_keeps_the_kernel_busy(harness, tmp_path):
    """``%tunix_run --wait``-style: the cell displays the widget and then blocks. The view's
    own messages queue behind that cell, so it must fill from the snapshot in its initial
    state and the thread's pushes alone."""
    root = tmp_path / "root"
    root.mkdir()
    run_dir, worker = _run_folder(root)
    release = tmp_path / "release"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "import pathlib, time\n"
        "from IPython.display import display\n"
        "from tunixrt_jupyter.widgets import RunWidget\n"
        f"display(RunWidget({str(run_dir)!r}))\n"
        f"while not pathlib.Path({str(release)!r}).exists():\n"
        "    time.sleep(0.05)\n")]
    nbformat.write(nb, root / "busy.ipynb")
    with harness.JupyterServer(app="lab", root_dir=root) as srv, \
            harness.NotebookBrowser(srv, viewport=(1300, 900)) as br:
        br.open("busy.ipynb")
        # not awaited: the command's promise only settles when the blocking cell ends
        br.page.evaluate("() => { window.jupyterapp.commands.execute("
                         "'notebook:run-all-cells'); }")
        try:
            _wait(br, lambda s: s["points"] == worker.points and s["lines"] == worker.lines,
                  what="the snapshot, while the displaying cell still runs")
            worker.advance(10)
            # points come in the append push, the step in the trait update right after it
            _wait(br, lambda s: s["points"] == worker.points and s["lines"] == worker.lines
                  and "step 22 / 60" in s["progress"], what="pushes while the kernel is busy")
            # the cell still runs (Lab's kernel-status light is no proof: ipykernel 7 answers
            # some requests on its shell thread and reports idle for them mid-cell)
            assert br.page.evaluate(harness._JS_BUSY)["running"] == 1
            br.screenshot(ARTIFACTS / "run_widget_busy_kernel.png")
        finally:
            release.touch()
        br.wait_idle()


def test_huge_log_keeps_the_dom_small(harness, tmp_path):
    """200k lines already on disk plus a 50k-line burst: the DOM holds max_log_lines (+ a
    marker), the newest line is shown, and the page stays responsive."""
    import time

    root = tmp_path / "root"
    root.mkdir()
    run_dir, worker = _run_folder(root)
    with open(run_dir / "stdout.log", "a") as f:
        f.writelines(f"preexisting line {i}\n" for i in range(200_000))
    _notebook(root / "huge.ipynb", run_dir, args=", max_log_lines=500")
    with harness.JupyterServer(app="lab", root_dir=root) as srv, \
            harness.NotebookBrowser(srv, viewport=(1300, 900)) as br:
        br.open("huge.ipynb")
        br.run_all()
        texts = "() => [...document.querySelectorAll('.trx-line')].map(e => e.textContent)"
        # stdout and stderr are separate files: the newest stdout line is among the last few
        _wait(br, lambda s: s["lines"] <= 501 and "preexisting line 199999"
              in br.page.evaluate(texts)[-3:], what="the tail of the big log")
        t0 = time.monotonic()
        with open(run_dir / "stdout.log", "a") as f:
            f.writelines(f"burst line {i}\n" for i in range(50_000))
        st = _wait(br, lambda s: br.page.evaluate(texts)[-1] == "burst line 49999",
                   what="the end of the burst")
        settle = time.monotonic() - t0
        assert st["lines"] <= 502, st  # 500 lines + at most two "not shown" markers
        t1 = time.monotonic()
        br.page.evaluate("() => document.body.offsetHeight")  # a forced layout: responsive?
        assert time.monotonic() - t1 < 2.0
        assert settle < 30, f"burst took {settle:.1f}s to show"
        # the toolbar says how much is not shown (the "not shown" marker line itself has
        # scrolled out of the 500-line window by now)
        count = br.page.locator(".trx-log-count").inner_text()
        assert count.startswith("last 500 of 2500") and count.endswith(" lines"), count
        br.page.locator(".trx-run").screenshot(path=str(ARTIFACTS / "run_widget_huge_log.png"))


def test_plain_ipywidgets_fallback_renders(harness, tmp_path):
    """The Kaggle-TPU path (no anywidget): HTML + IntProgress + Buttons, thread-driven."""
    root = tmp_path / "root"
    root.mkdir()
    run_dir, worker = _run_folder(root)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "from tunixrt_jupyter.widgets import make_run_view\n"
        f"v = make_run_view({str(run_dir)!r}, renderer='ipywidgets')\n"
        "v")]
    nbformat.write(nb, root / "plain.ipynb")
    with harness.JupyterServer(app="lab", root_dir=root) as srv, \
            harness.NotebookBrowser(srv, viewport=(1100, 700)) as br:
        br.open("plain.ipynb")
        br.run_all()
        worker.advance(18)
        br.page.wait_for_function("""() => [...document.querySelectorAll('.widget-html')]
            .some(e => e.textContent.includes('step 30 / 60'))""", timeout=30_000)
        assert "plain ipywidgets" in br.outputs_text()
        assert br.page.locator(".widget-hprogress").count() == 1
        br.page.locator("button:has-text('Cancel run')").click()
        br.page.locator("button:has-text('Yes, cancel')").click()
        stop_file = run_dir / "stop_request.json"
        br.page.wait_for_function("""() => [...document.querySelectorAll('.widget-html')]
            .some(e => e.textContent.includes('cancelled'))""", timeout=30_000)
        assert stop_file.exists()
        br.screenshot(ARTIFACTS / "run_view_ipywidgets_fallback.png")
