"""RunsWidget: the run history as a sortable, filterable, paged table with comparisons.

The data comes from a ``query`` callable, ``query(sort=, limit=, offset=, **filters)``
returning a ``RunList`` (``.rows``, ``.total``) or ``(rows, total)``: ``tunixrt.runs`` over
the DuckDB catalog in normal use, :class:`FolderQuery` (a scan of run folders) where there
is no catalog. Sorting, filtering and paging run in the kernel (a query per page), so the
browser never holds more than one page of a 100k-run history.

Messages (custom comm messages)::

    browser -> kernel
      {"type": "query", "sort": "-created_at", "offset", "limit",
                        "filters": {"status": [...], "model": "...", "name": "..."}}
      {"type": "compare", "run_ids": [...], "request": n}
      {"type": "open", "run_id"}
    kernel -> browser
      traits rows / total / query / error / query_rev (query_rev changes on every answer)
      {"type": "compare", "request": n, "runs": [{run_id, label, series: {name: [[x, y]..]}}],
                          "diff": [{"key", "values": {run_id: value}}]}
      {"type": "opened", "run_id", "shown": bool, "hint": "%tunix_show <id>"}

Clicking a row shows that run's live view in an Output area under the table (when the
widget was displayed with ``display()`` / as a cell result) and calls ``on_open`` hooks.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ._delivery import log
from ._feed import _label_from_config, read_config, short_id_of
from .run_widget import asset
from .static_html import as_timestamp, runs_html

QueryFn = Callable[..., Any]
ACTIVE = ("pending", "running")
MAX_COMPARE = 8
MAX_SERIES_POINTS = 2000
EDITABLE_FILTERS = ("status", "model", "name")


def _jsonable(value: Any) -> Any:
    """Catalog rows may hold datetimes, NaN, numpy scalars: make them JSON-safe."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    ts = as_timestamp(value)  # datetimes from the catalog
    if ts is not None:
        return ts
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def _result(res: Any) -> tuple[list[dict], int]:
    if isinstance(res, tuple) and len(res) == 2:
        rows, total = res
    else:
        rows, total = getattr(res, "rows", None), getattr(res, "total", None)
        if rows is None:
            rows = list(res)
            total = len(rows)
    return [dict(r) for r in rows], int(total if total is not None else len(rows))


def _downsample(points: list[list[float]], n: int = MAX_SERIES_POINTS) -> list[list[float]]:
    if len(points) <= n:
        return points
    stride = len(points) / n
    return [points[int(i * stride)] for i in range(n)] + [points[-1]]


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = d
    return out


def config_diff(configs: dict[str, dict]) -> list[dict[str, Any]]:
    """Only the dotted keys whose values differ between the runs (side by side)."""
    flat = {rid: _flatten(cfg or {}) for rid, cfg in configs.items()}
    keys = sorted(set().union(*(f.keys() for f in flat.values()))) if flat else []
    diff = []
    for key in keys:
        values = {rid: f.get(key) for rid, f in flat.items()}
        if len({repr(v) for v in values.values()}) > 1:
            diff.append({"key": key, "values": _jsonable(values)})
    return diff


class FolderQuery:
    """History straight from run folders (no catalog): same contract as ``tunixrt.runs``.

    Folding each run's events is cached by the events file's size and mtime, so a refresh
    of an unchanged history only stats files.
    """

    def __init__(self, home: str | os.PathLike):
        self.runs_dir = Path(home) / "runs"
        self._cache: dict[str, tuple[tuple[int, int], dict]] = {}

    def row(self, run_dir: Path) -> dict[str, Any]:
        from ..live import RunTail

        ev = run_dir / "events.jsonl"
        try:
            st = ev.stat()
            key = (st.st_size, st.st_mtime_ns)
        except OSError:
            key = (0, 0)
        cached = self._cache.get(run_dir.name)
        if cached and cached[0] == key:
            return cached[1]
        tail = RunTail(run_dir, logs=False)
        tail.poll()
        s = tail.state
        cfg = read_config(run_dir)
        labels = _label_from_config(cfg)
        model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
        dataset = cfg.get("dataset") if isinstance(cfg.get("dataset"), dict) else {}
        row = {
            "run_id": run_dir.name, "name": labels["name"], "tags": cfg.get("tags") or [],
            "model": labels["model"], "dataset": labels["dataset"], "mode": labels["mode"],
            "executor": labels["executor"], "platform": s.platform,
            "status": s.status or "pending", "created_at": s.created_at,
            "started_at": s.started_at, "ended_at": s.ended_at, "step": s.step,
            "total_steps": s.total or labels.get("max_steps"),
            "final_loss": s.last.get("train/loss"), "best_eval_loss": s.best.get("eval/loss"),
            "error": s.error, "dir": str(run_dir),
            "duration_s": (s.ended_at - s.started_at) if s.ended_at and s.started_at else None,
            "_family": str(model.get("family", "")).lower(),
            "_source": str(dataset.get("source", "")).lower(),
        }
        if row["created_at"] is None:
            try:
                row["created_at"] = (run_dir / "config.yaml").stat().st_mtime
            except OSError:
                row["created_at"] = None
        self._cache[run_dir.name] = (key, row)
        return row

    def __call__(self, *, sort: str = "-created_at", limit: int | None = 20, offset: int = 0,
                 status: Any = None, model: Any = None, dataset: Any = None, mode: Any = None,
                 tags: Any = None, name: Any = None, **_ignored: Any) -> tuple[list[dict], int]:
        def values(v: Any) -> list[str] | None:
            if v is None or v == "" or v == []:
                return None
            items = [v] if isinstance(v, str) else list(v)
            return [str(x).strip().lower() for x in items if str(x).strip()] or None

        try:
            dirs = [p for p in self.runs_dir.iterdir() if p.is_dir()]
        except FileNotFoundError:
            dirs = []
        rows = [self.row(d) for d in dirs]
        if st := values(status):
            rows = [r for r in rows if r["status"] in st]
        if md := values(mode):
            rows = [r for r in rows if str(r["mode"]).lower() in md]
        if m := values(model):
            rows = [r for r in rows if str(r["model"]).lower() in m or r["_family"] in m]
        if ds := values(dataset):
            rows = [r for r in rows if str(r["dataset"]).lower() in ds or r["_source"] in ds]
        if tg := values(tags):
            rows = [r for r in rows if {t.lower() for t in r["tags"]} & set(tg)]
        if nm := values(name):
            rows = [r for r in rows if any(n in str(r["name"]).lower() for n in nm)]
        desc = sort.startswith("-")
        field = sort.lstrip("+-")
        present = [r for r in rows if r.get(field) is not None]
        missing = [r for r in rows if r.get(field) is None]
        present.sort(key=lambda r: (r[field], r["run_id"]), reverse=desc)
        rows = present + missing  # NULLS LAST, like the catalog
        total = len(rows)
        page = rows[offset: None if limit is None else offset + limit]
        return [{k: v for k, v in r.items() if not k.startswith("_")} for r in page], total


def _series_from_folder(run_dir: Path, names: Iterable[str]) -> dict[str, list[list[float]]]:
    from ..events import iter_events

    wanted = set(names)
    out: dict[str, list[list[float]]] = {n: [] for n in wanted}
    for ev in iter_events(run_dir):
        if ev.get("type") == "metric" and ev.get("name") in wanted:
            v, s = ev.get("value"), ev.get("step")
            if isinstance(v, (int, float)) and math.isfinite(v) and isinstance(s, (int, float)):
                out[ev["name"]].append([s, v])
    return out


class RunsWidget(anywidget.AnyWidget):
    """History table. ``RunsWidget(query=tunixrt.runs)`` or ``RunsWidget(home=path)``."""

    _esm = asset("chart.js", "runs_widget.js")
    _css = asset("chart.css", "runs_widget.css")

    rows = traitlets.List().tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    query = traitlets.Dict().tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    query_rev = traitlets.Int(0).tag(sync=True)
    refresh_ms = traitlets.Int(3000).tag(sync=True)
    opened = traitlets.Unicode("").tag(sync=True)
    can_show = traitlets.Bool(False).tag(sync=True)

    def __init__(self, query: QueryFn | None = None, *, home: str | os.PathLike | None = None,
                 sort: str = "-created_at", page_size: int = 20, offset: int = 0,
                 filters: dict[str, Any] | None = None,
                 series: Callable[[str, list[str]], dict] | None = None,
                 configs: Callable[[list[str]], dict[str, dict]] | None = None,
                 open_run: Callable[[str], Any] | None = None,
                 initial: tuple[list[dict], int] | None = None, **kwargs: Any):
        self._home = Path(home) if home is not None else None
        self._query_fn = query or self._default_query()
        self._series_fn = series
        self._configs_fn = configs
        self._open_run = open_run
        self._on_open: list[Callable[[str], Any]] = []
        self._dirs: dict[str, str] = {}
        q = {"sort": sort, "limit": max(1, int(page_size)), "offset": max(0, int(offset)),
             "filters": {k: v for k, v in (filters or {}).items() if v not in (None, "", [])}}
        super().__init__(query=q, **kwargs)
        self.detail: Any = None
        try:
            import ipywidgets

            self.detail = ipywidgets.Output()
        except ImportError:  # pragma: no cover - anywidget depends on ipywidgets
            self.detail = None
        self.on_msg(self._on_custom)
        if initial is not None:
            self._set_rows(*initial, q)
        else:
            self.run_query()

    # -- construction helpers ------------------------------------------------------------
    def _default_query(self) -> QueryFn:
        if self._home is None:
            from ..home import Home

            self._home = Home.resolve().root
        try:
            from .. import api

            home = self._home

            def query(**kw: Any) -> Any:
                return api.runs(home=home, **kw)

            return query
        except ImportError:
            return FolderQuery(self._home)

    @classmethod
    def from_runlist(cls, result: Any, **kwargs: Any) -> RunsWidget:
        """The widget for a ``tunixrt.runs(...)`` result: same home, filters, sort, page."""
        from .. import api

        home = getattr(result, "home", None)
        q = dict(getattr(result, "query", {}) or {})
        root = getattr(home, "root", home)

        def query(**kw: Any) -> Any:
            return api.runs(home=home, **kw)

        filters = {k: v for k, v in q.items() if k not in ("sort", "limit", "offset")}
        rows, total = _result(result)
        return cls(query=query, home=root, sort=q.get("sort", "-created_at"),
                   page_size=q.get("limit", 20), offset=q.get("offset", 0), filters=filters,
                   initial=(rows, total), **kwargs)

    # -- querying ------------------------------------------------------------------------
    def run_query(self, **changes: Any) -> None:
        """Re-query with ``changes`` (sort, limit, offset, filters) applied."""
        q = {**self.query, **{k: v for k, v in changes.items() if v is not None}}
        filters = {k: v for k, v in (q.get("filters") or {}).items() if v not in (None, "", [])}
        q["filters"] = filters
        try:
            res = self._query_fn(sort=q["sort"], limit=q["limit"], offset=q["offset"],
                                 **filters)
            rows, total = _result(res)
            if q["offset"] and not rows and total:  # filtered to fewer pages: go to the last
                q["offset"] = max(0, (total - 1) // q["limit"] * q["limit"])
                rows, total = _result(self._query_fn(sort=q["sort"], limit=q["limit"],
                                                     offset=q["offset"], **filters))
            self._set_rows(rows, total, q)
        except Exception as exc:  # noqa: BLE001 - a bad filter is shown, not raised
            with self.hold_sync():
                self.error = f"{type(exc).__name__}: {exc}"
                self.query = q
                self.query_rev += 1

    def _set_rows(self, rows: list[dict], total: int, q: dict) -> None:
        for r in rows:
            if r.get("dir"):
                self._dirs[str(r["run_id"])] = str(r["dir"])
        with self.hold_sync():
            self.rows = [_jsonable(r) for r in rows]
            self.total = total
            self.query = q
            self.error = ""
            self.query_rev += 1

    def on_open(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(run_id)`` when a row is clicked."""
        self._on_open.append(callback)

    # -- display -------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"RunsWidget({len(self.rows)} of {self.total} runs)"

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
        return {**data, "text/plain": repr(self),
                "text/html": runs_html(self.rows, self.total)}, meta

    def _ipython_display_(self) -> None:
        """The table, then an Output area where clicked runs open (their live view)."""
        from IPython.display import display

        data, meta = self._repr_mimebundle_()
        display(data, metadata=meta, raw=True)
        if self.detail is not None:
            self.can_show = True
            display(self.detail)

    # -- messages ------------------------------------------------------------------------
    def _on_custom(self, _w: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "query":
            filters = content.get("filters")
            if isinstance(filters, dict):
                base = {k: v for k, v in (self.query.get("filters") or {}).items()
                        if k not in EDITABLE_FILTERS}
                filters = {**base, **{k: v for k, v in filters.items() if k in EDITABLE_FILTERS}}
            self.run_query(sort=content.get("sort"), limit=content.get("limit"),
                           offset=content.get("offset"), filters=filters)
        elif kind == "compare":
            ids = [str(r) for r in (content.get("run_ids") or [])][:MAX_COMPARE]
            self.send({"type": "compare", "request": content.get("request"),
                       **self.compare(ids)})
        elif kind == "open":
            self.show_run(str(content.get("run_id", "")))

    def compare(self, run_ids: list[str]) -> dict[str, Any]:
        """Loss curves of the runs (downsampled) and their config differences."""
        names = ["train/loss", "eval/loss"]
        labels = {str(r.get("run_id")): r.get("name") for r in self.rows}
        runs = []
        configs: dict[str, dict] = {}
        for rid in run_ids:
            try:
                series = self._series(rid, names)
            except Exception as exc:  # noqa: BLE001 - one unreadable run must not hide others
                log.warning("compare: no series for %s: %s", rid, exc)
                series = {}
            runs.append({"run_id": rid, "short_id": short_id_of(rid),
                         "label": f"{labels.get(rid) or rid} ({short_id_of(rid)})",
                         "series": {n: _downsample(v) for n, v in series.items()}})
        try:
            configs = self._configs(run_ids)
        except Exception as exc:  # noqa: BLE001
            log.warning("compare: configs unavailable: %s", exc)
        return {"runs": _jsonable(runs), "diff": config_diff(configs) if len(configs) > 1
                else []}

    def _run_dir(self, run_id: str) -> Path | None:
        if run_id in self._dirs:
            return Path(self._dirs[run_id])
        if self._home is not None and (self._home / "runs" / run_id).is_dir():
            return self._home / "runs" / run_id
        return None

    def _series(self, run_id: str, names: list[str]) -> dict[str, list[list[float]]]:
        if self._series_fn is not None:
            return self._series_fn(run_id, names)
        run_dir = self._run_dir(run_id)
        if run_dir is not None:
            return _series_from_folder(run_dir, names)
        return {}

    def _configs(self, run_ids: list[str]) -> dict[str, dict]:
        if self._configs_fn is not None:
            return self._configs_fn(run_ids)
        out = {}
        for rid in run_ids:
            run_dir = self._run_dir(rid)
            if run_dir is not None:
                out[rid] = read_config(run_dir)
        return out

    def show_run(self, run_id: str) -> bool:
        """Show ``run_id``'s live view under the table (and call ``on_open`` hooks)."""
        for cb in self._on_open:
            try:
                cb(run_id)
            except Exception:  # noqa: BLE001
                log.exception("on_open callback failed")
        shown = False
        if self.detail is not None and self.can_show:
            try:
                view = self._open_run(run_id) if self._open_run else self._default_view(run_id)
                from IPython.display import clear_output, display

                with self.detail:
                    clear_output(wait=True)
                    display(view)
                shown = True
            except Exception as exc:  # noqa: BLE001 - e.g. the run folder was deleted
                log.warning("could not open run %s: %s", run_id, exc)
        self.opened = run_id
        self.send({"type": "opened", "run_id": run_id, "shown": shown,
                   "hint": f"%tunix_show {short_id_of(run_id)}"})
        return shown

    def _default_view(self, run_id: str) -> Any:
        from .fallback import make_run_view

        run_dir = self._run_dir(run_id)
        if self._home is not None:
            try:
                from .. import api

                return make_run_view(api.get(run_id, home=self._home))
            except (ImportError, KeyError):
                pass
        if run_dir is None:
            raise KeyError(f"no folder for run {run_id}")
        return make_run_view(run_dir)

    def active(self) -> bool:
        """True while a shown run is still pending or running (the browser auto-refreshes)."""
        return any(r.get("status") in ACTIVE for r in self.rows)

    def refresh(self) -> None:
        self.run_query()


__all__ = ["FolderQuery", "RunsWidget", "config_diff"]
