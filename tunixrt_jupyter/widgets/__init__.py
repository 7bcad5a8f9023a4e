"""Notebook views of runs: live RunWidget, history RunsWidget, and their fallbacks.

``make_run_view`` / ``make_runs_view`` pick anywidget, plain ipywidgets or text (see
``fallback``); ``RunWidget`` and ``RunsWidget`` are imported lazily because they need
anywidget, which the Kaggle TPU image lacks.
"""

from __future__ import annotations

from typing import Any

from ._delivery import shutdown_views
from .fallback import choose_renderer, make_run_view, make_runs_view

__all__ = ["RunWidget", "RunsWidget", "choose_renderer", "make_run_view", "make_runs_view",
           "shutdown_views"]


def __getattr__(name: str) -> Any:
    if name == "RunWidget":
        from .run_widget import RunWidget

        return RunWidget
    if name == "RunsWidget":
        from .runs_widget import RunsWidget

        return RunsWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
