"""Static text/html of runs: what saved notebooks, nbval and GitHub show without a kernel.

A live widget's output only holds a model id; without the kernel (a notebook on GitHub, a
reopened file, nbval) the front end falls back to the other mime types of the same output.
So every widget also carries text/plain and a self-contained text/html snapshot: inline
styles only (no CSS classes that a sanitiser or a missing stylesheet would drop), and an
inline SVG sparkline instead of a canvas.
"""

from __future__ import annotations

import base64
import html
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

STATUS_COLORS = {
    "pending": "#9e9e9e", "running": "#1e88e5", "completed": "#43a047", "failed": "#e53935",
    "cancelled": "#fb8c00", "timeout": "#8e24aa", "lost": "#455a64",
}
# no quotes inside: this goes into single-quoted style attributes
FONT = ("font-family:-apple-system,BlinkMacSystemFont,Segoe UI,Roboto,Helvetica,Arial,"
        "sans-serif;font-size:13px")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt_loss(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.4f}"
    return "–"


def fmt_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_time(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return "–"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def badge(status: str | None) -> str:
    status = status or "pending"
    color = STATUS_COLORS.get(status, "#757575")
    return (f'<span style="display:inline-block;padding:1px 8px;border-radius:10px;'
            f'background:{color};color:#fff;font-size:12px;font-weight:600">'
            f"{esc(status)}</span>")


def sparkline(points: Sequence[tuple[Any, float]], width: int = 160, height: int = 36,
              color: str = "#1e88e5", as_img: bool = True) -> str:
    """A tiny SVG polyline of ``(step, value)`` pairs (downsampled to ~width points)."""
    pts = [(float(x), float(y)) for x, y in points
           if isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isfinite(y)]
    if len(pts) < 2:
        return ""
    if len(pts) > width:
        stride = len(pts) / width
        pts = [pts[int(i * stride)] for i in range(width)] + [pts[-1]]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    dx, dy = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    pad = 2
    coords = " ".join(
        f"{pad + (x - x0) / dx * (width - 2 * pad):.1f},"
        f"{pad + (1 - (y - y0) / dy) * (height - 2 * pad):.1f}" for x, y in pts)
    svg = (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="train loss">'
           f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/>'
           "</svg>")
    if not as_img:
        return svg
    # An <img> with a data URI survives HTML sanitisers that drop inline <svg> (JupyterLab
    # renders untrusted notebooks' text/html through one); the SVG text stays inside.
    data = base64.b64encode(svg.encode()).decode()
    return (f'<img class="tunixrt-sparkline" src="data:image/svg+xml;base64,{data}" '
            f'width="{width}" height="{height}" alt="train loss sparkline">')


def run_text(state: dict[str, Any]) -> str:
    """One line for text/plain consumers that want more than the repr (text renderer)."""
    header, progress = state.get("header", {}), state.get("progress", {})
    summary = state.get("summary") or {}
    step, total = progress.get("step"), progress.get("total")
    parts = [f"[{header.get('short_id', '?')}] {header.get('name', '')}",
             state.get("status", "pending")]
    if step is not None:
        parts.append(f"step {step or 0}/{total}" if total else f"step {step}")
    last = state.get("last") or {}
    if last.get("train/loss") is not None:
        parts.append(f"loss {fmt_loss(last['train/loss'])}")
    if last.get("eval/loss") is not None:
        parts.append(f"eval {fmt_loss(last['eval/loss'])}")
    if summary.get("duration_s") is not None:
        parts.append(f"in {fmt_duration(summary['duration_s'])}")
    return "  ".join(parts)


def run_html(state: dict[str, Any], train_points: Sequence[tuple[Any, float]] = (),
             last: dict[str, float] | None = None, best: dict[str, float] | None = None,
             log_lines: Iterable[str] = ()) -> str:
    """The snapshot card: header, badge, step/total bar, last losses, sparkline, summary."""
    header, progress = state.get("header", {}), state.get("progress", {})
    summary = state.get("summary") or {}
    status = state.get("status", "pending")
    last, best = last or {}, best or {}
    step, total = progress.get("step"), progress.get("total")
    frac = min(1.0, max(0.0, (step or 0) / total)) if total else 0.0
    if status == "completed" and total:
        frac = max(frac, 1.0 if step == total else frac)
    color = STATUS_COLORS.get(status, "#757575")
    meta = " · ".join(esc(header.get(k)) for k in ("model", "dataset", "mode", "executor",
                                                    "platform") if header.get(k))
    step_text = (f"step {step or 0} / {total}" if total else
                 (f"step {step}" if step is not None else "not started"))
    losses = []
    for key, label in (("train/loss", "train loss"), ("eval/loss", "eval loss")):
        if key in last:
            losses.append(f"{label} <b>{fmt_loss(last[key])}</b>"
                          f" <span style='opacity:.7'>(best {fmt_loss(best.get(key))})</span>")
    rows = []
    if summary:
        rows.append(("duration", fmt_duration(summary.get("duration_s"))))
        if summary.get("error"):
            rows.append(("error", summary["error"]))
        for ck in summary.get("checkpoints", [])[-1:]:
            rows.append(("checkpoint", f"{ck.get('path')} (step {ck.get('step')})"))
        for art in summary.get("artifacts", []):
            rows.append((f"artifact {art.get('name', '')}", art.get("path")))
    rows.append(("folder", header.get("run_dir")))
    table = "".join(
        f"<tr><td style='padding:1px 10px 1px 0;opacity:.7;vertical-align:top;text-align:left'>"
        f"{esc(k)}</td>"
        f"<td style='padding:1px 0;font-family:monospace;word-break:break-all;text-align:left'>"
        f"{esc(v)}</td></tr>"
        for k, v in rows if v)
    lines = list(log_lines)
    log_block = ""
    if lines:
        log_block = ("<pre style='margin:6px 0 0;padding:4px 6px;max-height:9em;overflow:auto;"
                     "background:rgba(127,127,127,.08);font-size:11px;line-height:1.35'>"
                     + esc("\n".join(lines)) + "</pre>")
    return (
        f"<div class='tunixrt-static-run' data-status='{esc(status)}' "
        f"style='{FONT};border:1px solid rgba(127,127,127,.35);border-left:4px solid {color};"
        f"border-radius:4px;padding:8px 10px;max-width:760px'>"
        f"<div><b>{esc(header.get('name'))}</b> "
        f"<code style='opacity:.7'>{esc(header.get('short_id'))}</code> {badge(status)}</div>"
        f"<div style='opacity:.75;margin:2px 0 6px'>{meta}</div>"
        f"<div style='display:flex;gap:14px;align-items:center;flex-wrap:wrap'>"
        f"<div style='min-width:220px'>"
        f"<div style='height:8px;background:rgba(127,127,127,.2);border-radius:4px;"
        f"overflow:hidden'><div style='height:8px;width:{frac * 100:.1f}%;background:{color}'>"
        f"</div></div><div style='margin-top:3px'>{esc(step_text)}</div></div>"
        f"<div>{sparkline(train_points, color=color)}</div>"
        f"<div>{'<br>'.join(losses)}</div></div>"
        f"<table style='margin-top:6px;border-collapse:collapse;font-size:12px'>{table}</table>"
        f"{log_block}</div>"
    )


RUNS_COLUMNS = (
    ("name", "name"), ("status", "status"), ("model", "model"), ("dataset", "dataset"),
    ("mode", "mode"), ("step", "steps"), ("final_loss", "final loss"),
    ("best_eval_loss", "best eval loss"), ("duration", "duration"), ("started_at", "started"),
)


def row_duration(row: dict[str, Any], now: float | None = None) -> float | None:
    start, end = row.get("started_at"), row.get("ended_at")
    if not isinstance(start, (int, float)):
        return None
    if not isinstance(end, (int, float)):
        if row.get("status") not in ("running", "pending"):
            return None
        end = now or time.time()
    return end - start


def as_timestamp(value: Any) -> float | None:
    """Catalog rows may carry datetimes; folder rows carry unix seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    ts = getattr(value, "timestamp", None)
    if callable(ts):
        try:
            return float(ts())
        except (TypeError, ValueError, OSError):
            return None
    return None


def runs_html(rows: Sequence[dict[str, Any]], total: int | None = None) -> str:
    """The history table as plain HTML (the RunsWidget's static fallback)."""
    head = "".join(f"<th style='text-align:left;padding:3px 8px;border-bottom:1px solid "
                   f"rgba(127,127,127,.5)'>{esc(label)}</th>" for _, label in RUNS_COLUMNS)
    body = []
    for row in rows:
        cells = []
        for key, _ in RUNS_COLUMNS:
            if key == "status":
                val = badge(row.get("status"))
            elif key == "step":
                step, tot = row.get("step"), row.get("total_steps")
                val = esc(f"{step if step is not None else '–'}" + (f" / {tot}" if tot else ""))
            elif key in ("final_loss", "best_eval_loss"):
                val = fmt_loss(row.get(key))
            elif key == "duration":
                r = {**row, "started_at": as_timestamp(row.get("started_at")),
                     "ended_at": as_timestamp(row.get("ended_at"))}
                val = fmt_duration(row_duration(r))
            elif key == "started_at":
                started = as_timestamp(row.get("started_at"))
                val = fmt_time(started or as_timestamp(row.get("created_at")))
            elif key == "name":
                val = (f"{esc(row.get('name'))} <code style='opacity:.6'>"
                       f"{esc(str(row.get('run_id', '')).rsplit('-', 1)[-1])}</code>")
            else:
                val = esc(row.get(key) if row.get(key) is not None else "–")
            cells.append(f"<td style='padding:2px 8px;text-align:left'>{val}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    shown = len(rows)
    count = f"{shown} of {total} runs" if total is not None else f"{shown} runs"
    return (f"<div class='tunixrt-static-runs' style='{FONT}'>"
            f"<table style='border-collapse:collapse'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
            f"<div style='opacity:.7;margin-top:4px'>{esc(count)}</div></div>")
