"""RunWidget: the live view of one run (status, progress, loss chart, log tail, Cancel).

Message protocol (custom comm messages; all carry ``type``)::

    kernel -> browser
      {"type": "append", "p0", "points": [[name, step, value]...],
                          "l0", "logs": [["o"|"e", line]...],
                          "state"?: {status, header, progress, summary, rev},
                          "token"?: echo of a hello, "reason": "push"|"poll"|"hello"}
      {"type": "cancel_ack", "ok", "via": "comm", "message"}
    browser -> kernel
      {"type": "hello", "p"?, "l"?}       a page's store starts: everything after its
                                          snapshot (no cursors: everything kept)
      {"type": "poll", "p", "l"}          pull: what is new after my cursors
      {"type": "cancel"}                  fallback when the REST cancel is unavailable

``p0``/``l0`` are the sequence numbers of the first point/line in the message; a view keeps
"next expected" cursors and drops what it already has, so push and pull may overlap
freely. Small state (status, header, progress, summary, rev) is also in synced traits;
``rev`` orders the two sources. Pushes come from a background thread (see
``_delivery``); polls are answered in the comm handler, which is what reaches the page
on Colab, where thread messages never do.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ._delivery import Ticker, log, register
from ._feed import RunFeed
from .static_html import run_html

STATIC = Path(__file__).parent / "static"
TERMINAL_GRACE_S = 3.0  # keep reading a little after the final status (trailing logs)
SNAPSHOT_MAX_POINTS = 5000  # more than this: the first view asks with hello instead
IDLE_AFTER_S = 60.0  # nothing new for this long: poll the folder once a second only


def asset(*names: str) -> str:
    """Concatenate static files: ``chart.js`` defines helpers the widget modules use.

    One ES module per widget keeps it CDN-free and build-free (anywidget loads ``_esm``
    from a string, where relative imports cannot resolve).
    """
    return "\n".join((STATIC / n).read_text(encoding="utf-8") for n in names)


class RunWidget(anywidget.AnyWidget):
    """Live view of one run folder; ``RunWidget(run_dir)`` or ``RunWidget.for_run(run)``."""

    _esm = asset("chart.js", "run_widget.js")
    _css = asset("chart.css", "run_widget.css")

    run_id = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("pending").tag(sync=True)
    header = traitlets.Dict().tag(sync=True)
    progress = traitlets.Dict().tag(sync=True)
    summary = traitlets.Dict().tag(sync=True)
    rev = traitlets.Int(0).tag(sync=True)
    max_log_lines = traitlets.Int(1000).tag(sync=True)
    poll_ms = traitlets.Int(1000).tag(sync=True)
    rest_cancel = traitlets.Bool(True).tag(sync=True)
    cancel_state = traitlets.Unicode("").tag(sync=True)
    # Everything known at construction, in the comm_open state. The page's store starts
    # from it and then takes every push: no round trip to the kernel is needed, so a view
    # fills even when the cell that displayed it keeps the kernel busy (run.wait()).
    snapshot = traitlets.Dict().tag(sync=True)
    view_key = traitlets.Unicode("").tag(sync=True)

    def __init__(self, run_dir: str | os.PathLike, *, run_id: str | None = None,
                 run: Any = None, max_log_lines: int = 1000, interval: float = 0.2,
                 live: bool = True, **kwargs: Any):
        feed = RunFeed(run_dir, run_id=run_id, run=run, max_log_lines=max_log_lines)
        with feed.lock:
            feed.poll()
            snap = feed.since(0, 0)
            if len(snap.points) > SNAPSHOT_MAX_POINTS:
                snap.points = []  # a long finished run: views fetch it with their hello
            snapshot = snap.message(reason="snapshot")
            feed.mark_pushed()  # from here on, every point and line goes out as a push
        st = feed.view_state()
        super().__init__(run_id=feed.run_id, status=st["status"], header=st["header"],
                         progress=st["progress"], summary=st["summary"], rev=st["rev"],
                         max_log_lines=feed.max_log_lines, snapshot=snapshot,
                         view_key=uuid.uuid4().hex, **kwargs)
        self._feed = feed
        self._run = run
        self._quiet_since = time.monotonic()
        self._terminal_since: float | None = None
        self._live = live
        self.on_msg(self._on_custom)
        self._ticker = Ticker(self._tick, interval, name=f"tunixrt-view-{st['header']['short_id']}",
                              idle_interval=1.0)
        register(self)
        if live:
            self._ticker.start()

    @classmethod
    def for_run(cls, run: Any, **kwargs: Any) -> RunWidget:
        """A widget for an engine ``Run`` handle (its cancel is then used as-is)."""
        return cls(run.dir, run_id=run.id, run=run, **kwargs)

    # -- public --------------------------------------------------------------------------
    @property
    def feed(self) -> RunFeed:
        return self._feed

    @property
    def run_dir(self) -> Path:
        return self._feed.run_dir

    @property
    def delivering(self) -> bool:
        """True while the background thread still pushes updates."""
        return self._ticker.alive

    def stop(self) -> None:
        """Stop background delivery (the view keeps working through polls)."""
        self._ticker.stop()

    def close(self) -> None:
        self._ticker.stop()
        super().close()

    def refresh(self) -> None:
        """Read the folder now and push what is new (what the thread does every tick)."""
        with self._feed.lock:
            batch = self._feed.poll()
            self._publish(batch.state_changed)

    def __repr__(self) -> str:
        return f"RunWidget(run={self._feed.header()['short_id']}, status={self._feed.status})"

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
        self.refresh()
        data = {**data, "text/plain": repr(self), "text/html": self.static_html()}
        return data, meta

    def static_html(self) -> str:
        """The snapshot card saved with the notebook (state as of now)."""
        feed = self._feed
        with feed.lock:
            s = feed.state
            logs = [line for _, line in list(feed.logs)[-8:]] if s.status == "failed" else []
            return run_html(feed.view_state(), feed.series("train/loss"), dict(s.last),
                            dict(s.best), logs)

    # -- delivery ------------------------------------------------------------------------
    def _publish(self, state_changed: bool) -> None:
        """Broadcast what is new (caller holds the feed lock: messages leave in seq order)."""
        out = self._feed.take_push()
        if out.points or out.logs:
            self.send(out.message(reason="push"))
        if state_changed:
            self._sync_traits()

    def _sync_traits(self) -> None:
        st = self._feed.view_state()
        with self.hold_sync():
            self.status = st["status"]
            self.header = st["header"]
            self.progress = st["progress"]
            self.summary = st["summary"]
            self.rev = st["rev"]

    def _tick(self) -> bool:
        """One background step; False ends the thread (closed widget or run over)."""
        if self.comm is None:
            return False
        now = time.monotonic()
        with self._feed.lock:
            batch = self._feed.poll()
            self._publish(batch.state_changed)
        if batch:
            self._quiet_since = now
        self._ticker.idle = now - self._quiet_since > IDLE_AFTER_S
        if self._feed.terminal:
            if self._terminal_since is None:
                self._terminal_since = now
            elif now - self._terminal_since > TERMINAL_GRACE_S:
                return False
        return True

    # -- messages from the browser -------------------------------------------------------
    def _on_custom(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind in ("hello", "poll"):
            self._answer(kind, content)
        elif kind == "cancel":
            self._cancel_async()

    def _answer(self, kind: str, content: dict) -> None:
        """Reply with everything the asking view lacks, read fresh from the folder.

        The reply is broadcast to every view of this model, so it also counts as the push
        of whatever was new; other views drop the part they already have.
        """
        feed = self._feed
        # a hello may carry cursors too: what a (possibly stale) snapshot already holds is
        # still right, since sequence numbers only grow
        p = _as_int(content.get("p"))
        seq = _as_int(content.get("l"))
        with feed.lock:
            batch = feed.poll()
            if batch.state_changed:
                self._sync_traits()
            reply = feed.since(p, seq)
            feed.mark_pushed()
            msg = reply.message(state=feed.view_state(), reason=kind)
            if content.get("token"):
                msg["token"] = str(content["token"])
            self.send(msg)
        self._quiet_since = time.monotonic()
        self._ticker.wake()
        if self._live and not feed.terminal and not self._ticker.alive and self.comm is not None:
            self._terminal_since = None
            self._ticker.start()  # e.g. a resumed run after the thread had stopped

    def _cancel_async(self) -> None:
        """Cancel off the handler: stopping a process may wait out its grace period."""
        with self._feed.lock:  # every trait write holds the lock the thread's writes hold
            self.cancel_state = "requesting"
        ctx = contextvars.copy_context()
        threading.Thread(target=ctx.run, args=(self._cancel_and_ack,), daemon=True,
                         name=f"tunixrt-cancel-{self._feed.run_id}").start()

    def _cancel_and_ack(self) -> None:
        ok, message = cancel_run_folder(self._feed.run_dir, self._run)
        try:
            with self._feed.lock:
                self.cancel_state = "requested" if ok else "error"
                self.send({"type": "cancel_ack", "ok": ok, "via": "comm", "message": message})
        except Exception:  # noqa: BLE001 - widget closed meanwhile
            log.debug("cancel ack not delivered", exc_info=True)
        self.refresh()


def cancel_run_folder(run_dir: Path, run: Any = None) -> tuple[bool, str]:
    """Cancel through the engine handle when there is one, else through the folder.

    Either way ``stop_request.json`` is written before any signal (so the worker ends
    ``cancelled``, not ``failed``). Returns (ok, human message).
    """
    try:
        if run is not None and hasattr(run, "cancel"):
            try:
                status = run.cancel(wait=False)
            except TypeError:
                status = run.cancel()
            return True, f"cancel requested (status {status})"
        try:
            from ..control import cancel_run
            from ..home import Home
        except ImportError:
            cancel_run = None
        if cancel_run is not None:
            status = cancel_run(Home(run_dir.parent.parent), run_dir, "cancelled", wait=False)
            return True, f"cancel requested (status {status})"
        from ..stop import request_stop

        request_stop(run_dir, "cancelled")
        return True, "stop requested"
    except Exception as exc:  # noqa: BLE001 - report to the user, never crash the kernel
        return False, f"cancel failed: {type(exc).__name__}: {exc}"


def _as_int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
