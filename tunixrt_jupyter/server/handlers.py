"""REST + Server-Sent Events for runs, served by the Jupyter server under ``tunixrt/api/``.

All handlers are authenticated ``APIHandler``s (token or login cookie; POST also needs the
XSRF token unless the token came in the Authorization header) and never block the server's
event loop: catalog queries, folder reads and cancels run in thread pools.

``POST runs/<id>/cancel`` is what the run widget's Cancel button calls: it reaches the run
through the server, not the notebook's kernel, so it works while the kernel is busy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.iostream import StreamClosedError

from ..events import TERMINAL_STATUSES, current_status, iter_events
from ..home import Home
from .folders import folder_rows, jsonable
from .homes import HomeError, HomeResolver

AUTH_RESOURCE = "tunixrt"
SETTINGS_KEY = "tunixrt_homes"
RUN_ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,127}")
LIST_COLUMNS_DROPPED = ("config_json",)
DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
MAX_LOG_LINES = 10_000
SSE_INTERVAL_S = 1.0
SSE_KEEPALIVE_S = 15.0
SSE_LOST_CHECK_S = 5.0
CANCEL_REPLY_WAIT_S = 1.5  # answer with the final status if the stop is this quick

# Cancels can wait a whole grace period (SIGTERM ... SIGKILL): their own pool, so they
# never starve the pool the list / detail / stream handlers use.
_CANCEL_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tunixrt-cancel")
_cancels: dict[Path, asyncio.Future] = {}
# One catalog user at a time per home inside this process (the catalog's fcntl lock is
# per process, so threads of one process must take turns themselves).
_catalog_locks: dict[Path, threading.Lock] = {}
_catalog_locks_guard = threading.Lock()


def _catalog_lock(home: Home) -> threading.Lock:
    with _catalog_locks_guard:
        return _catalog_locks.setdefault(home.root, threading.Lock())


async def _blocking(fn, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args, **kwargs))


def _split(values: list[str]) -> list[str] | None:
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


class TunixrtHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def homes(self) -> HomeResolver:
        return self.settings[SETTINGS_KEY]

    def home(self) -> Home:
        try:
            return self.homes.resolve(self.get_argument("home", None))
        except HomeError as exc:
            raise tornado.web.HTTPError(403, str(exc)) from None

    def int_arg(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise tornado.web.HTTPError(400, f"{name} must be an integer, not {raw!r}") from None
        return max(lo, min(hi, value))

    def float_arg(self, name: str) -> float | None:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return None
        try:
            return float(raw)
        except ValueError:
            raise tornado.web.HTTPError(400, f"{name} must be a number, not {raw!r}") from None

    async def run_dir(self, home: Home, run_id: str) -> Path:
        if not RUN_ID_RE.fullmatch(run_id) or run_id.strip(".") == "":
            raise tornado.web.HTTPError(404, f"no run {run_id!r}")
        try:
            found = await _blocking(home.find_run, run_id)
        except KeyError as exc:
            raise tornado.web.HTTPError(404, str(exc.args[0] if exc.args else exc)) from None
        if found.parent != home.runs_dir:
            raise tornado.web.HTTPError(404, f"no run {run_id!r}")
        return found

    def reply(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(jsonable(obj)))


# ----------------------------------------------------------------------------------------
# runs


def _list_runs(homes: HomeResolver, home: Home, filters: dict, sort: str, limit: int,
               offset: int) -> dict:
    """Catalog first (history + ingest + lost-run reconciliation); run folders otherwise."""
    source, error = "catalog", None
    try:
        from .. import api

        with _catalog_lock(home):
            result = api.runs(home=home, sort=sort, limit=limit, offset=offset, **filters)
        rows, total = result.rows, result.total
    except Exception as exc:  # no/broken/busy catalog: the folders are the truth anyway
        source, error = "folders", f"{type(exc).__name__}: {exc}"
        try:
            rows, total = folder_rows(home).query(sort=sort, limit=limit, offset=offset,
                                                  **filters)
        except ValueError as bad:
            raise tornado.web.HTTPError(400, str(bad)) from None
    rows = [{k: v for k, v in r.items() if k not in LIST_COLUMNS_DROPPED} for r in rows]
    out = {"rows": rows, "total": total, "limit": limit, "offset": offset, "sort": sort,
           "home": homes.label(home), "source": source}
    if error:
        out["catalog_error"] = error
    return out


class RunsHandler(TunixrtHandler):
    """``GET runs?status=running,pending&model=&name=&limit=&offset=&sort=-created_at``"""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        home = self.home()
        filters: dict[str, Any] = {}
        for key in ("status", "model", "dataset", "mode", "tags"):
            values = _split(self.get_arguments(key))
            if values:
                filters[key] = values
        name = self.get_argument("name", "").strip()
        if name:
            filters["name"] = name
        for key in ("since", "until"):
            value = self.float_arg(key)
            if value is not None:
                filters[key] = value
        sort = self.get_argument("sort", "-created_at") or "-created_at"
        if not re.fullmatch(r"[-+]?[a-z_]{1,40}", sort):
            raise tornado.web.HTTPError(400, f"bad sort {sort!r}")
        limit = self.int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = self.int_arg("offset", 0, 0, 10**9)
        self.reply(await _blocking(_list_runs, self.homes, home, filters, sort, limit, offset))


def _detail(homes: HomeResolver, home: Home, run_dir: Path) -> dict:
    from ..config import load_config
    from ..live import RunState
    from ..procinfo import ProcessRecord
    from ..stop import stop_reason

    state = RunState()
    for ev in iter_events(run_dir):
        state.apply(ev)
    config_error = None
    try:
        config = load_config(run_dir / "config.yaml").to_dict()
    except Exception as exc:  # a damaged config.yaml must not hide the rest
        config, config_error = None, str(exc)
    record = ProcessRecord.load(run_dir)
    process = None
    if record is not None:
        process = {**dataclasses.asdict(record), "alive": record.is_alive()}
    run_id = run_dir.name
    return {
        "id": run_id, "short_id": run_id.rsplit("-", 1)[-1], "home": homes.label(home),
        "dir": str(run_dir), "status": state.status, "state": dataclasses.asdict(state),
        "config": config, "config_error": config_error, "process": process,
        "stop_request": stop_reason(run_dir), "row": folder_rows(home).row(run_id),
    }


class RunHandler(TunixrtHandler):
    """``GET runs/<id>``: folded state, resolved config, process record."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str):
        home = self.home()
        run_dir = await self.run_dir(home, run_id)
        self.reply(await _blocking(_detail, self.homes, home, run_dir))


def _metrics(run_dir: Path, names: list[str] | None) -> dict:
    wanted = {n.lstrip("/") for n in names} if names else None
    points, seen = [], set()
    for ev in iter_events(run_dir):
        if ev.get("type") != "metric":
            continue
        name = ev.get("name")
        seen.add(name)
        if wanted is None or name in wanted:
            points.append({"name": name, "step": ev.get("step"), "value": ev.get("value"),
                           "t": ev.get("t")})
    return {"run_id": run_dir.name, "names": sorted(n for n in seen if n), "points": points}


class MetricsHandler(TunixrtHandler):
    """``GET runs/<id>/metrics?name=train/loss`` (repeat or comma-separate names; none: all)."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str):
        home = self.home()
        run_dir = await self.run_dir(home, run_id)
        self.reply(await _blocking(_metrics, run_dir, _split(self.get_arguments("name"))))


def _logs(run_dir: Path, n: int, stream: str | None) -> dict:
    from ..logtail import tail_run_logs

    return {"run_id": run_dir.name, "lines": tail_run_logs(run_dir, n, stream)}


class LogsHandler(TunixrtHandler):
    """``GET runs/<id>/logs?n=200&stream=stdout|stderr``: the last n output lines."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str):
        home = self.home()
        run_dir = await self.run_dir(home, run_id)
        n = self.int_arg("n", 200, 0, MAX_LOG_LINES)
        stream = self.get_argument("stream", None) or None
        if stream not in (None, "stdout", "stderr"):
            raise tornado.web.HTTPError(400, "stream must be stdout or stderr")
        self.reply(await _blocking(_logs, run_dir, n, stream))


def _cancel(home: Home, run_dir: Path) -> str | None:
    from ..config import load_config
    from ..control import cancel_run

    try:
        grace_s = load_config(run_dir / "config.yaml").run.grace_s
    except Exception:  # unreadable config: the engine's default grace period
        grace_s = 10.0
    return cancel_run(home, run_dir, "cancelled", grace_s=grace_s, wait=False)


class CancelHandler(TunixrtHandler):
    """``POST runs/<id>/cancel``: stop request + SIGTERM to the run's group, never blocking.

    Replies 200 with the final status when the run stopped within a moment, else 202 with
    ``"cancelling": true`` while the stop (grace period, then SIGKILL) goes on in a thread;
    the event stream reports the final status.
    """

    @tornado.web.authenticated
    @authorized
    async def post(self, run_id: str):
        home = self.home()
        run_dir = await self.run_dir(home, run_id)
        fut = _cancels.get(run_dir)
        if fut is None or fut.done():
            loop = asyncio.get_running_loop()
            fut = asyncio.ensure_future(loop.run_in_executor(_CANCEL_POOL, _cancel, home, run_dir))
            _cancels[run_dir] = fut
            fut.add_done_callback(partial(self._cancel_done, run_dir))
        try:
            status = await asyncio.wait_for(asyncio.shield(fut), CANCEL_REPLY_WAIT_S)
        except asyncio.TimeoutError:
            status = await _blocking(current_status, run_dir)
            self.reply({"run_id": run_dir.name, "status": status,
                        "cancelling": status not in TERMINAL_STATUSES}, status=202)
            return
        self.reply({"run_id": run_dir.name, "status": status, "cancelling": False})

    def _cancel_done(self, run_dir: Path, fut: asyncio.Future) -> None:
        if _cancels.get(run_dir) is fut:
            del _cancels[run_dir]
        if not fut.cancelled() and fut.exception() is not None:
            self.log.error("tunixrt: cancelling %s failed", run_dir.name,
                           exc_info=fut.exception())


class HomesHandler(TunixrtHandler):
    """``GET homes``: the default home and the ``.tunixrt`` homes found under root_dir."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        homes = await _blocking(self.homes.discover)
        default = self.homes.default
        self.reply({"default": self.homes.label(default), "homes": [
            {"home": self.homes.label(h), "dir": str(h.root), "default": h == default,
             "runs": len(h.run_ids())} for h in homes]})


# ----------------------------------------------------------------------------------------
# Server-Sent Events


class RunWatch:
    """What one event-stream client has seen: the newest ``limit`` runs and their sizes."""

    def __init__(self, home: Home, limit: int):
        self.rows = folder_rows(home)
        self.home, self.limit = home, limit
        self.sizes: dict[str, int] = {}
        self.active: set[str] = set()
        self.last_lost_check = 0.0

    def snapshot(self) -> dict:
        ids = self.rows.newest_ids(self.limit)
        self.sizes = self.rows.sizes(ids)
        rows = self.rows.rows(ids)
        self.active = {r["run_id"] for r in rows if r["status"] not in TERMINAL_STATUSES}
        return {"type": "snapshot", "rows": rows, "total": len(self.rows.run_ids()),
                "t": time.time()}

    def poll(self) -> dict | None:
        self._reconcile_lost()
        ids = self.rows.newest_ids(self.limit)
        sizes = self.rows.sizes(ids)
        changed = [rid for rid in ids if self.sizes.get(rid) != sizes[rid]]
        removed = [rid for rid in self.sizes if rid not in sizes]
        self.sizes = sizes
        if not changed and not removed:
            return None
        rows = self.rows.rows(changed)
        for r in rows:
            (self.active.add if r["status"] not in TERMINAL_STATUSES
             else self.active.discard)(r["run_id"])
        self.active.difference_update(removed)
        return {"type": "update", "rows": rows, "removed": removed,
                "total": len(self.rows.run_ids()), "t": time.time()}

    def _reconcile_lost(self) -> None:
        """Mark shown runs whose process is provably gone ``lost`` (as ``runs()`` does)."""
        now = time.monotonic()
        if not self.active or now - self.last_lost_check < SSE_LOST_CHECK_S:
            return
        self.last_lost_check = now
        from ..control import reconcile_lost

        try:
            reconcile_lost(self.home, sorted(self.active))
        except Exception:  # best effort; the next runs() call reconciles too
            pass


class EventsHandler(TunixrtHandler):
    """``GET events?limit=50``: ``text/event-stream`` of run-list changes.

    First a ``{"type": "snapshot", "rows": [...], "total": n}`` message with the newest
    ``limit`` runs, then ``{"type": "update", "rows": [changed], "removed": [ids]}`` whenever
    a run folder's ``events.jsonl`` grows or a run appears or goes (polled every second).
    A comment line every 15 s keeps idle connections open through proxies.
    """

    _closed = False

    def on_connection_close(self) -> None:
        self._closed = True

    async def _send(self, payload: dict | None = None, comment: str | None = None) -> None:
        if payload is not None:
            self.write(f"data: {json.dumps(jsonable(payload))}\n\n")
        else:
            self.write(f": {comment}\n\n")
        await self.flush()

    @tornado.web.authenticated
    @authorized
    async def get(self):
        home = self.home()
        limit = self.int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        interval = max(0.2, self.float_arg("interval") or SSE_INTERVAL_S)
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache, no-transform")
        self.set_header("X-Accel-Buffering", "no")
        watch = RunWatch(home, limit)
        try:
            self.write("retry: 2000\n")
            first = await _blocking(watch.snapshot)
            first["home"] = self.homes.label(home)
            await self._send(first)
            last_sent = time.monotonic()
            while not self._closed:
                await asyncio.sleep(interval)
                if self._closed:
                    break
                update = await _blocking(watch.poll)
                if update is not None:
                    await self._send(update)
                    last_sent = time.monotonic()
                elif time.monotonic() - last_sent > SSE_KEEPALIVE_S:
                    await self._send(comment="keepalive")
                    last_sent = time.monotonic()
        except StreamClosedError:
            pass  # the browser went away


def setup_handlers(serverapp) -> HomeResolver:
    """Register the handlers on the server's web app; returns the home resolver."""
    web_app = serverapp.web_app
    homes = HomeResolver(serverapp.root_dir)
    web_app.settings[SETTINGS_KEY] = homes
    base = url_path_join(web_app.settings["base_url"], "tunixrt", "api")
    rid = r"(?P<run_id>[^/]+)"
    web_app.add_handlers(".*$", [
        (url_path_join(base, "runs") + "/?", RunsHandler),
        (url_path_join(base, "runs", rid) + "/?", RunHandler),
        (url_path_join(base, "runs", rid, "metrics"), MetricsHandler),
        (url_path_join(base, "runs", rid, "logs"), LogsHandler),
        (url_path_join(base, "runs", rid, "cancel"), CancelHandler),
        (url_path_join(base, "homes"), HomesHandler),
        (url_path_join(base, "events"), EventsHandler),
    ])
    return homes
