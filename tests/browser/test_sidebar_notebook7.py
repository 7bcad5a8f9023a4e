"""The "Tunix Runs" sidebar in Notebook 7 (same left area as JupyterLab).

Its own module: the JupyterLab sidebar tests keep one Playwright instance for their whole
module, and a second sync Playwright cannot start in the same thread meanwhile.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT / "tests" / "server"))

from test_sidebar import (  # noqa: E402
    ARTIFACTS,
    EXT_ARG,
    ITEM,
    NOTEBOOK,
    _with_extensions,
    badge,
    make_run,
    pytestmark,  # noqa: F401  (browser marker, skip without chromium / build)
)


def test_sidebar_in_notebook7(tmp_path, monkeypatch):
    """Notebook 7 has the same left area: the command opens the panel and it lists runs."""
    from nbbrowser import JupyterServer, NotebookBrowser

    _with_extensions(monkeypatch, tmp_path)
    with JupyterServer(app="notebook", root_dir=tmp_path / "root",
                       extra_args=(EXT_ARG,)) as srv:
        run = make_run(srv.root_dir / ".tunixrt", name="nb7-run", steps=3, losses=[0.5])
        (srv.root_dir / "train.ipynb").write_text(json.dumps(NOTEBOOK))
        with NotebookBrowser(srv) as br:
            br.open("train.ipynb")
            br.page.evaluate("() => window.jupyterapp.commands.execute('tunixrt:show-runs')")
            br.page.locator(ITEM.format(run.name)).wait_for(state="visible")
            assert badge(br.page, run.name) == "completed"
            br.page.screenshot(path=str(ARTIFACTS / "sidebar-notebook7.png"))
