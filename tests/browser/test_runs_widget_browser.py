"""RunsWidget in JupyterLab: sort by header, filter, page, compare two runs, open a run."""

from __future__ import annotations

import math
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
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} missing: run tools/setup_browser.sh (apt chromium)"),
]

RUNS = [  # name, status, steps, learning rate, model
    ("baseline", "completed", 40, 3e-3, "tiny"),
    ("lr-1e-3", "completed", 40, 1e-3, "tiny"),
    ("lora-r8", "failed", 17, 3e-3, "tiny"),
    ("long", "cancelled", 26, 2e-3, "tiny"),
    ("gemma-sft", "completed", 30, 1e-4, "gemma3"),
    ("qwen-sft", "timeout", 12, 1e-4, "qwen3"),
    ("warmup-8", "completed", 40, 3e-3, "tiny"),
]


def _history(home: Path) -> None:
    from tunixrt_jupyter.events import append_event

    for i, (name, status, steps, lr, family) in enumerate(RUNS):
        d = home / "runs" / f"20251123-1{i:01d}0000-feed{i:02d}"
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(
            f"name: {name}\nmodel: {{family: {family}}}\ndataset: {{source: tiny}}\n"
            f"training: {{max_steps: 40, learning_rate: {lr}, warmup_steps: "
            f"{8 if 'warmup' in name else 4}}}\nrun: {{mode: local}}\n")
        append_event(d, "status", status="pending")
        append_event(d, "status", status="running", platform="cpu")
        for s in range(1, steps + 1):
            append_event(d, "progress", step=s, total=40)
            loss = 1.5 + 3.5 * math.exp(-s * lr * 1000 / 30) + 0.05 * math.sin(s + i)
            append_event(d, "metric", name="train/loss", value=round(loss, 4), step=s)
            if s % 10 == 0:
                append_event(d, "metric", name="eval/loss", value=round(loss + 0.2, 4), step=s)
        extra = {"error": "RESOURCE_EXHAUSTED: out of memory"} if status == "failed" else {}
        if name != "qwen-sft":  # stays running: the table must refresh by itself later
            append_event(d, "status", status=status, **extra)


def _dom(br) -> dict:
    return br.page.evaluate("""() => {
      const r = document.querySelector('.trx-runs');
      if (!r) return null;
      return {rows: +r.dataset.rows, total: +r.dataset.total, sort: r.dataset.sort,
              names: [...r.querySelectorAll('.trx-runs-name')].map(e => e.textContent),
              compared: +(r.dataset.compared || 0), points: +(r.dataset.comparePoints || 0),
              diffKeys: +(r.dataset.diffKeys || 0),
              page: r.querySelector('.trx-runs-page').textContent,
              note: r.querySelector('.trx-runs-open-note').textContent,
              runView: !!document.querySelector('.trx-run .trx-badge')};
    }""")


def _wait(br, pred, what: str, timeout: float = 30.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        st = _dom(br)
        if st and pred(st):
            return st
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}: {st}")
        br.page.wait_for_timeout(50)


def test_runs_widget_in_jupyterlab(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import nbbrowser

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    ARTIFACTS.mkdir(exist_ok=True)
    root = tmp_path / "root"
    home = root / ".tunixrt"
    _history(home)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "from tunixrt_jupyter.widgets.runs_widget import RunsWidget, FolderQuery\n"
        f"RunsWidget(query=FolderQuery({str(home)!r}), home={str(home)!r}, page_size=5)")]
    nbformat.write(nb, root / "runs.ipynb")
    with nbbrowser.JupyterServer(app="lab", root_dir=root) as srv, \
            nbbrowser.NotebookBrowser(srv, viewport=(1300, 900)) as br:
        br.open("runs.ipynb")
        br.run_all()
        st = _wait(br, lambda s: s["rows"] == 5, "first page")
        assert st["total"] == 7 and st["page"] == "1–5 of 7"
        assert st["names"][0] == "warmup-8"  # newest first

        br.page.locator("th[data-sort='final_loss']").click()
        st = _wait(br, lambda s: s["sort"] == "-final_loss", "sorted by final loss")
        br.page.locator("th[data-sort='final_loss']").click()
        st = _wait(br, lambda s: s["sort"] == "final_loss", "ascending final loss")
        assert st["names"][0] in ("baseline", "warmup-8")

        br.page.locator(".trx-next").click()
        st = _wait(br, lambda s: s["page"] == "6–7 of 7", "second page")
        br.page.locator(".trx-prev").click()
        _wait(br, lambda s: s["page"] == "1–5 of 7", "back to the first page")

        br.page.select_option(".trx-f-status", "completed")
        st = _wait(br, lambda s: s["total"] == 4, "status filter")
        br.page.fill(".trx-f-name", "lr")
        st = _wait(br, lambda s: s["total"] == 1 and s["names"] == ["lr-1e-3"], "name filter")
        br.page.fill(".trx-f-name", "")
        br.page.select_option(".trx-f-status", "")
        st = _wait(br, lambda s: s["total"] == 7, "filters cleared")

        # compare two runs: overlaid curves + the config keys that differ
        br.page.locator("tr[data-run-id='20251123-100000-feed00'] .trx-select").click()
        br.page.locator("tr[data-run-id='20251123-110000-feed01'] .trx-select").click()
        st = _wait(br, lambda s: s["compared"] == 2 and s["diffKeys"] >= 2, "comparison")
        assert st["points"] == 2 * (40 + 4)
        diff = br.page.locator(".trx-diff-table").inner_text()
        assert "training.learning_rate" in diff and "0.003" in diff and "0.001" in diff

        # click a row: its live view opens below the table
        br.page.locator("tr[data-run-id='20251123-120000-feed02'] .trx-runs-name").click()
        st = _wait(br, lambda s: s["runView"] and "showing" in s["note"], "run view below")
        br.page.locator(".trx-run[data-status='failed']").wait_for(timeout=10_000)
        br.wait_widgets()
        br.screenshot(ARTIFACTS / "runs_widget.png")

        # a shown run is still active: the table re-queries every few seconds by itself
        br.page.locator("th[data-sort='started_at']").click()
        _wait(br, lambda s: s["sort"] == "-started_at", "newest first")
        badge = "tr[data-run-id='20251123-150000-feed05'] .trx-badge"
        assert br.page.locator(badge).inner_text() == "running"
        from tunixrt_jupyter.events import append_event

        append_event(home / "runs" / "20251123-150000-feed05", "status", status="timeout")
        br.page.wait_for_function(f"() => document.querySelector({badge!r})"
                                  ".textContent === 'timeout'", timeout=20_000)
        ours = [e for e in br.page_errors + br.console_errors if "trx" in e.lower()
                or "tunixrt" in e.lower()]
        assert not ours, ours
