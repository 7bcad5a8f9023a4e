"""Pick a renderer for a run view, and the two fallbacks for where anywidget cannot run.

- ``anywidget``: :class:`RunWidget` (chart, log tail, REST cancel, pull for Colab).
- ``ipywidgets``: Kaggle's TPU image has ipywidgets but no anywidget. A plain VBox of
  HTML + IntProgress + Buttons, driven by the same background thread and :class:`RunFeed`.
- ``text``: no widgets at all (terminal IPython, a frontend without ipywidgets): prints
  status lines from the background thread, at most every few seconds.

The choice comes from ``tunixrt_jupyter.env.widget_support()`` (which honours
``TUNIXRT_RENDERER``); when a renderer cannot be imported the next one down is used, and
the first use of each fallback says so once.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ._delivery import Ticker, register
from ._feed import RunFeed
from .static_html import badge, esc, fmt_duration, fmt_loss, run_html, runs_html, sparkline

RENDERERS = ("anywidget", "ipywidgets", "text")
_ANNOUNCED: set[str] = set()


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except Exception:  # noqa: BLE001 - a broken install counts as missing
        return False
    return True


def choose_renderer(renderer: str | None = None) -> tuple[str, str]:
    """(renderer, reason): explicit argument, else ``TUNIXRT_RENDERER``, else env detection."""
    if renderer:
        choice, reason = renderer.strip().lower(), "requested"
    elif os.environ.get("TUNIXRT_RENDERER", "").strip().lower() in RENDERERS:
        choice, reason = os.environ["TUNIXRT_RENDERER"].strip().lower(), "TUNIXRT_RENDERER"
    else:
        try:
            from ..env import widget_support

            info = widget_support()
            choice, reason = info["renderer"], info.get("reason", "")
        except ImportError:
            choice, reason = "anywidget", "default"
    if choice not in RENDERERS:
        raise ValueError(f"renderer must be one of {', '.join(RENDERERS)}, not {choice!r}")
    if choice == "anywidget" and not _importable("anywidget"):
        choice, reason = "ipywidgets", "anywidget is not installed"
    if choice == "ipywidgets" and not _importable("ipywidgets"):
        choice, reason = "text", "ipywidgets is not installed"
    return choice, reason


def _announce(renderer: str, reason: str) -> None:
    """Say once per process which fallback is in use, and why."""
    if renderer == "anywidget" or renderer in _ANNOUNCED:
        return
    _ANNOUNCED.add(renderer)
    what = "plain ipywidgets" if renderer == "ipywidgets" else "text status lines"
    print(f"tunixrt: showing runs with {what} ({reason}).", flush=True)


def _resolve(run: Any) -> tuple[Path, str, Any]:
    """(run_dir, run_id, engine handle or None) from a Run, a folder path or a run id."""
    if hasattr(run, "dir") and hasattr(run, "id"):
        return Path(run.dir), str(run.id), run
    path = Path(run) if isinstance(run, (str, os.PathLike)) else None
    if path is not None and path.is_dir():
        return path, path.name, None
    from .. import api

    handle = api.get(str(run))
    return Path(handle.dir), str(handle.id), handle


def make_run_view(run: Any, renderer: str | None = None, **kwargs: Any) -> Any:
    """A live view of ``run`` (Run handle, run folder or id) with the best renderer here."""
    run_dir, run_id, handle = _resolve(run)
    choice, reason = choose_renderer(renderer)
    _announce(choice, reason)
    if choice == "anywidget":
        from .run_widget import RunWidget

        return RunWidget(run_dir, run_id=run_id, run=handle, **kwargs)
    if choice == "ipywidgets":
        return IpywidgetsRunView(run_dir, run_id=run_id, run=handle, **kwargs)
    return TextRunView(run_dir, run_id=run_id, run=handle, **kwargs)


def make_runs_view(result: Any = None, renderer: str | None = None, **kwargs: Any) -> Any:
    """The history view for a ``RunList`` (or the default query) with the best renderer."""
    choice, reason = choose_renderer(renderer)
    _announce(choice, reason)
    if choice == "anywidget":
        from .runs_widget import RunsWidget

        return RunsWidget.from_runlist(result, **kwargs) if result is not None else \
            RunsWidget(**kwargs)
    rows = list(getattr(result, "rows", []) or [])
    total = getattr(result, "total", len(rows))
    if choice == "ipywidgets":
        import ipywidgets

        return ipywidgets.HTML(runs_html(rows, total))
    return RunsText(rows, total)


class RunsText:
    """History as text (and HTML where a frontend can show it but has no widgets)."""

    def __init__(self, rows: list[dict], total: int):
        self.rows, self.total = rows, total

    def __repr__(self) -> str:
        lines = [f"{'run':<8} {'name':<28} {'status':<10} {'step':>9} {'final':>8} {'eval':>8}"]
        for r in self.rows:
            step = r.get("step")
            tot = r.get("total_steps")
            steps = f"{step if step is not None else '-'}" + (f"/{tot}" if tot else "")
            lines.append(f"{str(r.get('run_id', '')).rsplit('-', 1)[-1]:<8} "
                         f"{str(r.get('name', ''))[:28]:<28} {str(r.get('status', '')):<10} "
                         f"{steps:>9} {fmt_loss(r.get('final_loss')):>8} "
                         f"{fmt_loss(r.get('best_eval_loss')):>8}")
        lines.append(f"{len(self.rows)} of {self.total} runs")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return runs_html(self.rows, self.total)


class _FeedView:
    """Shared driving logic: a RunFeed read by a Ticker thread; subclasses draw."""

    def _start_feed(self, run_dir: Path, run_id: str | None, run: Any, interval: float,
                    max_log_lines: int) -> None:
        self._feed = RunFeed(run_dir, run_id=run_id, run=run, max_log_lines=max_log_lines)
        self._run = run
        self._terminal_since: float | None = None
        self._ticker = Ticker(self._tick, interval, name=f"tunixrt-view-{self._feed.run_id}",
                              idle_interval=1.0)
        with self._feed.lock:
            self._feed.poll()
            self._feed.mark_pushed()
            self._draw(True)  # the view shows the run at once, not after the first tick
        register(self)
        self._ticker.start()

    @property
    def feed(self) -> RunFeed:
        return self._feed

    def stop(self) -> None:
        self._ticker.stop()

    def _tick(self) -> bool:
        with self._feed.lock:
            batch = self._feed.poll()
            self._feed.mark_pushed()
            if batch:
                self._draw(batch.state_changed)
        if self._feed.terminal:
            now = time.monotonic()
            if self._terminal_since is None:
                self._terminal_since = now
            elif now - self._terminal_since > 2.0:
                return False
        return True

    def _draw(self, state_changed: bool) -> None:
        raise NotImplementedError

    def static_html(self) -> str:
        feed = self._feed
        with feed.lock:
            s = feed.state
            return run_html(feed.view_state(), feed.series("train/loss"), dict(s.last),
                            dict(s.best))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(run={self._feed.header()['short_id']}, "
                f"status={self._feed.status})")


class TextRunView(_FeedView):
    """Prints a status line on every status change and at most every ``every_s`` seconds."""

    def __init__(self, run_dir: str | os.PathLike, *, run_id: str | None = None,
                 run: Any = None, every_s: float = 10.0, interval: float = 0.5,
                 max_log_lines: int = 50, stream: Any = None):
        self.every_s = every_s
        self._stream = stream
        self._last_print = 0.0
        self._last_status: str | None = None
        self._start_feed(Path(run_dir), run_id, run, interval, max_log_lines)

    def line(self) -> str:
        from ..progress import progress_line

        with self._feed.lock:
            return f"[{self._feed.header()['short_id']}] {progress_line(self._feed.state)}"

    def _draw(self, state_changed: bool) -> None:
        now = time.monotonic()
        status = self._feed.status
        if status != self._last_status or now - self._last_print >= self.every_s:
            self._last_status = status
            self._last_print = now
            out = self._stream or sys.stdout
            print(self.line(), file=out, flush=True)
            if self._feed.terminal:
                s = self._feed.summary()
                extra = [f"duration {fmt_duration(s.get('duration_s'))}"]
                if s.get("final_loss") is not None:
                    extra.append(f"final loss {fmt_loss(s['final_loss'])}")
                if s.get("best_eval_loss") is not None:
                    extra.append(f"best eval {fmt_loss(s['best_eval_loss'])}")
                if s.get("error"):
                    extra.append(f"error: {s['error']}")
                print(f"[{self._feed.header()['short_id']}] " + "  ".join(extra), file=out,
                      flush=True)

    def __repr__(self) -> str:
        return self.line()

    def _repr_html_(self) -> str:
        return self.static_html()


def _ipywidgets_view_class() -> type:
    import ipywidgets

    class IpywidgetsRunView(_FeedView, ipywidgets.VBox):
        """Plain-ipywidgets run view: header, IntProgress, loss sparkline, log tail, Cancel."""

        def __init__(self, run_dir: str | os.PathLike, *, run_id: str | None = None,
                     run: Any = None, interval: float = 0.3, max_log_lines: int = 50,
                     **kwargs: Any):
            self._head = ipywidgets.HTML()
            self._bar = ipywidgets.IntProgress(min=0, max=1, value=0,
                                               layout=ipywidgets.Layout(width="320px"))
            self._ptext = ipywidgets.HTML()
            self._chart = ipywidgets.HTML()
            self._logs = ipywidgets.HTML()
            self._cancel = ipywidgets.Button(description="Cancel run", button_style="")
            self._yes = ipywidgets.Button(description="Yes, cancel", button_style="danger",
                                          layout=ipywidgets.Layout(display="none"))
            self._no = ipywidgets.Button(description="Keep running",
                                         layout=ipywidgets.Layout(display="none"))
            self._msg = ipywidgets.HTML()
            self._cancel.on_click(lambda _b: self._confirm(True))
            self._no.on_click(lambda _b: self._confirm(False))
            self._yes.on_click(lambda _b: self._do_cancel())
            actions = ipywidgets.HBox([self._cancel, self._yes, self._no, self._msg])
            super().__init__([self._head, ipywidgets.HBox([self._bar, self._ptext]),
                              self._chart, self._logs, actions], **kwargs)
            self._last_chart = 0.0
            self._start_feed(Path(run_dir), run_id, run, interval, max_log_lines)

        def _confirm(self, show: bool) -> None:
            self._cancel.layout.display = "none" if show else None
            self._yes.layout.display = None if show else "none"
            self._no.layout.display = None if show else "none"

        def _do_cancel(self) -> None:
            from .run_widget import cancel_run_folder

            self._confirm(False)
            self._cancel.disabled = True
            self._msg.value = "cancelling…"

            def work() -> None:
                ok, message = cancel_run_folder(self._feed.run_dir, self._run)
                self._msg.value = "cancel requested, stopping…" if ok else message
                if not ok:
                    self._cancel.disabled = False

            ctx = contextvars.copy_context()
            threading.Thread(target=ctx.run, args=(work,), daemon=True).start()

        def _draw(self, state_changed: bool) -> None:
            feed = self._feed
            st = feed.view_state()
            h, p = st["header"], st["progress"]
            if state_changed:
                meta = " · ".join(esc(h.get(k)) for k in ("model", "dataset", "mode",
                                                           "executor", "platform") if h.get(k))
                self._head.value = (f"<b>{esc(h['name'])}</b> <code>{esc(h['short_id'])}</code> "
                                    f"{badge(st['status'])} <span style='opacity:.7'>{meta}</span>")
                total, step = p.get("total") or 0, p.get("step") or 0
                self._bar.max = max(1, int(total or 1))
                self._bar.value = min(int(step), self._bar.max)
                self._bar.bar_style = {"completed": "success", "failed": "danger",
                                       "cancelled": "warning", "timeout": "warning",
                                       "lost": "danger"}.get(st["status"], "")
                parts = [f"step {step} / {total}" if total else f"step {step}"]
                if p.get("rate"):
                    parts.append(f"{p['rate']:.2f} steps/s")
                if p.get("eta") is not None:
                    parts.append(f"ETA {fmt_duration(p['eta'])}")
                last = feed.state.last
                for key in ("train/loss", "eval/loss"):
                    if key in last:
                        parts.append(f"{key} {fmt_loss(last[key])}")
                self._ptext.value = "&nbsp;" + " · ".join(parts)
                if feed.terminal:
                    self._confirm(False)
                    self._cancel.layout.display = "none"
                    s = st["summary"]
                    self._msg.value = (f"{esc(st['status'])} in "
                                       f"{fmt_duration(s.get('duration_s'))}"
                                       + (f" — {esc(s['error'])}" if s.get("error") else ""))
            now = time.monotonic()
            if now - self._last_chart > 1.0 or feed.terminal:  # SVG redraw: at most 1/s
                self._last_chart = now
                self._chart.value = sparkline(feed.series("train/loss"), width=420, height=80)
            # the newest lines, no inner scrolling: an HTML widget cannot keep a scroll position
            lines = [("! " if s == "e" else "") + text for s, text in list(feed.logs)[-12:]]
            self._logs.value = ("<pre style='font-size:11px;line-height:1.35;margin:0'>"
                                + esc("\n".join(lines)) + "</pre>")

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            bundle = super()._repr_mimebundle_(**kwargs)
            data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
            return {**data, "text/plain": repr(self), "text/html": self.static_html()}, meta

    return IpywidgetsRunView


def IpywidgetsRunView(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - acts as the class
    """Construct the plain-ipywidgets view.

    The class subclasses ``ipywidgets.VBox``, so it is built on first use: this module must
    import where ipywidgets is missing (the text renderer is needed exactly there).
    """
    cls = globals().get("_IpywidgetsRunViewClass")
    if cls is None:
        cls = _ipywidgets_view_class()
        globals()["_IpywidgetsRunViewClass"] = cls
    return cls(*args, **kwargs)
