"""What keeps the example notebooks honest under nbval: sanitizers and notebook hygiene.

``pytest --nbval examples --nbval-sanitize-with examples/sanitize.cfg`` compares stored
outputs with fresh ones after both went through ``examples/sanitize.cfg``. These tests
check each rule against real tunixrt output (the product's own formatters), check that the
rules replace only what varies, and check that every notebook is stored executed, with
independent runs, no widget state and no machine-specific leftovers.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
HOME = "/tmp/tunixrt-example-kx0zaosg"
RID = "20261123-132506-be52af"


def _patterns() -> list[tuple[str, str]]:
    from nbval.plugin import get_sanitize_patterns

    return get_sanitize_patterns((EXAMPLES / "sanitize.cfg").read_text())


def sanitize(text: str) -> str:
    """What nbval does to every output string (the rules in file order)."""
    for regex, replace in _patterns():
        text = re.sub(regex, replace, text)
    return text


def _examples_conftest():
    spec = importlib.util.spec_from_file_location("tunixrt_examples_conftest",
                                                  EXAMPLES / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs_text(cell) -> list[str]:
    texts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            texts.append(out["text"])
        for mime, value in out.get("data", {}).items():
            if mime.startswith("text/"):
                texts.append(value if isinstance(value, str) else "".join(value))
    return texts


# ------------------------------------------------------------------------- the rules


def test_every_rule_is_read_and_compiles():
    text = (EXAMPLES / "sanitize.cfg").read_text()
    sections = re.findall(r"^\[[^\]]+\]$", text, flags=re.MULTILINE)
    patterns = _patterns()
    # nbval reads regex/replace pairs with a regex: a malformed pair is silently dropped
    assert len(patterns) == len(sections) >= 10
    assert len({regex for regex, _ in patterns}) == len(patterns)  # nbval keys them by regex
    for regex, _ in patterns:
        re.compile(regex)


@pytest.mark.parametrize(("raw", "expected"), [
    (f"Run(id='{RID}', name='quickstart', status='completed')",
     "Run(id='RUN-ID', name='quickstart', status='completed')"),
    ("RunWidget(run=be52af, status=completed)", "RunWidget(run=SHORT-ID, status=completed)"),
    ("RunWidget(run=132506, status=pending)", "RunWidget(run=SHORT-ID, status=LIVE)"),
    ("RunWidget(run=be52af, status=running)", "RunWidget(run=SHORT-ID, status=LIVE)"),
    ("follow it with: tunixrt logs be52af -f   stop it: tunixrt cancel 123456",
     "follow it with: tunixrt logs SHORT-ID -f|stop it: tunixrt cancel SHORT-ID"),
    (f"  checkpoint {HOME}/runs/{RID}/checkpoints/12 (step 12)",
     "|checkpoint $TUNIXRT_HOME/runs/RUN-ID/checkpoints/12 (step 12)"),
    ("/var/folders/x_/q1/T/tunixrt-example-a_b1c2d3/runs", "$TUNIXRT_HOME/runs"),
    ("dataset.path '/home/ci/work/tunixrt/examples/missing.jsonl' does not exist",
     "dataset.path '.../examples/missing.jsonl' does not exist"),
    ("started 2026-11-23 13:25:12, written_at: '2026-11-23T13:22:19Z', table 2026-11-23 13:23",
     "started TIMESTAMP, written_at: 'TIMESTAMP', table TIMESTAMP"),
    ("duration   0:03", "duration|DURATION"),
    ("12/20  loss 3.9239  eval 3.9796  4.37 step/s  ETA 1:02:03",
     "12/20|loss FLOAT|eval FLOAT|RATE steps/s|ETA DURATION"),
    ("LOSS 3.98 BEST 5.393 lr 1.0e-05", "LOSS FLOAT BEST FLOAT lr 1.0e-05"),
    ('{"pid": 30982, "pgid": 30982}', '{"pid": PID, "pgid": 30982}'),
    ("Train loop finished in: 0.9519 seconds", "Train loop finished in: FLOAT seconds"),
])
def test_rule_replaces_what_varies(raw, expected):
    assert sanitize(raw) == expected


@pytest.mark.parametrize("kept", [
    "loss went down: True",
    "final loss 3.9",
    "steps [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]",
    "completed [5, 10]",
    "8,192 of 90,688 parameters trained (LoRA rank 4)",
    "Run(id='RUN-ID', name='long-run', status='cancelled')",
    "exit code 3",
    "144 records",
])
def test_rules_keep_results(kept):
    assert sanitize(kept) == kept


def _card(status: str, step: int | None, **summary) -> str:
    from tunixrt_jupyter.widgets.static_html import run_html

    state = {"status": status, "summary": summary,
             "header": {"name": "quickstart", "short_id": "d9bf3e", "model": "tiny",
                        "run_dir": f"{HOME}/runs/{RID}"},
             "progress": {"step": step, "total": 20}}
    points = [(s, 5.5 - 0.1 * s) for s in range(1, (step or 0) + 1)]
    return run_html(state, points, {"train/loss": 3.3473} if step else {},
                    {"train/loss": 3.3473} if step else {},
                    ["tunixrt: run failed: boom"] if status == "failed" else [])


@pytest.mark.parametrize(("status", "step"), [("pending", None), ("running", 3),
                                              ("running", 17)])
def test_cards_of_runs_still_going_are_one_placeholder(status, step):
    """What a run had done when its card was displayed is a race: it is not compared."""
    assert sanitize(_card(status, step)) == \
        "<div class='tunixrt-static-run' data-status='LIVE'>LIVE-RUN-CARD</div>"


@pytest.mark.parametrize(("status", "step", "summary"), [
    ("completed", 20, {"duration_s": 4.2}),
    ("failed", None, {"duration_s": None, "error": "dataset.path 'x' line 2 is not valid JSON"}),
    ("cancelled", 7, {"duration_s": 3.0}),
])
def test_cards_of_finished_runs_are_compared(status, step, summary):
    a = sanitize(_card(status, step, **summary))
    assert a.startswith(f"<div class='tunixrt-static-run' data-status='{status}'")
    assert f">{status}</span>" in a and "quickstart" in a and "SHORT-ID" in a
    assert "$TUNIXRT_HOME/runs/RUN-ID" in a and "LIVE" not in a
    if step:
        assert f"step {step} / 20" in a and "train loss <b>FLOAT</b>" in a
        assert "base64,SPARKLINE" in a
    # the same card of another machine: other id, home, losses and duration
    other = _card(status, step, **summary).replace("d9bf3e", "a1b2c3").replace(
        "kx0zaosg", "zz9_8yy7").replace("3.3473", "3.3481").replace(RID, "20270101-000000-a1b2c3")
    assert sanitize(other) == a


def test_text_tables_compare_equal_when_only_values_differ():
    from tunixrt_jupyter.cli import _table

    cols = [("run_id", "ID"), ("name", "NAME"), ("status", "STATUS"), ("steps", "STEPS"),
            ("final_loss", "LOSS"), ("started", "STARTED")]
    here = [{"run_id": RID, "name": "from-shell", "status": "completed", "steps": "12/12",
             "final_loss": 3.92391, "started": "2026-11-23 13:25:06"}]
    there = [{**here[0], "run_id": "20270101-000000-a1b2c3", "final_loss": 3.9801,
              "started": "2027-01-01 00:00:00"}]
    assert _table(here, cols) != _table(there, cols)
    assert sanitize(_table(here, cols)) == sanitize(_table(there, cols))
    assert "completed" in sanitize(_table(here, cols)) and "12/12" in sanitize(_table(here, cols))


# ------------------------------------------------------------------------ the notebooks


def test_there_are_six_notebooks_and_the_readme_lists_them():
    names = [p.name for p in NOTEBOOKS]
    assert [n[:3] for n in names] == ["01_", "02_", "03_", "04_", "05_", "06_"], names
    readme = (EXAMPLES / "README.md").read_text()
    for name in names:
        assert f"({name})" in readme, f"examples/README.md does not list {name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_executed_and_independent(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb.metadata, "widget state bloats the file and goes stale"
    markers = _examples_conftest().nbval_markers
    code = [c for c in nb.cells if c.cell_type == "code"]

    # the first code cell gives the notebook a fresh home before anything else runs
    first = next(c for c in code if "NBVAL_SKIP" not in markers(c.source))
    assert 'os.environ["TUNIXRT_HOME"] = tempfile.mkdtemp(prefix="tunixrt-example-")' in \
        first.source
    before = "\n".join(c.source for c in code[:code.index(first)])
    assert "tunix" not in before.replace("tunixrt-jupyter[tunix]", ""), \
        "nothing may touch tunixrt before the home is set"

    counts = []
    for cell in code:
        found = markers(cell.source)
        for marker in found:  # each marker says why, on the next line
            lines = cell.source.splitlines()
            i = next(n for n, line in enumerate(lines) if marker in line)
            assert lines[i + 1].startswith("# "), f"{marker} without a reason: {cell.source}"
        if "NBVAL_SKIP" in found:
            assert cell.execution_count is None and not cell.outputs
            continue
        assert cell.execution_count is not None, f"not executed: {cell.source[:80]}"
        counts.append(cell.execution_count)
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:80]
    assert counts == sorted(counts) and len(set(counts)) == len(counts), \
        "cells must be stored as executed top to bottom in one kernel"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_have_nothing_machine_specific_left_after_sanitizing(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for text in _outputs_text(cell):
            clean = sanitize(text)
            assert not RUN_ID.search(clean), clean[:300]
            assert "tunixrt-example-" not in clean, clean[:300]
            assert not re.search(r"0x[0-9a-f]{6,}", clean), clean[:300]
            assert "/tmp/" not in clean and "/work/" not in clean, clean[:300]


def test_marker_parsing_matches_nbval():
    from nbval.plugin import comment_markers, find_comment_markers

    markers = _examples_conftest().nbval_markers
    assert set(_examples_conftest().NBVAL_MARKERS) == set(comment_markers)
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            ours = markers(cell.source)
            theirs = dict(find_comment_markers(cell.source))
            assert ("NBVAL_SKIP" in ours) == bool(theirs.get("skip"))
            assert ("NBVAL_IGNORE_OUTPUT" in ours) == (theirs.get("check") is False)
