"""Text views of a run's state: the one-line progress (shell, text fallback) and a summary.

Progress is derived from the event stream alone (step, total, times), so every view, the
terminal demo, the text widget and ``tunixrt show``, agrees on steps/s and ETA.
"""

from __future__ import annotations

import time
from typing import Any

from .live import RunState


def rate_and_eta(state: RunState, now: float | None = None) -> tuple[float | None, float | None]:
    """Steps per second since ``running`` and seconds left, when they can be known."""
    if not state.started_at or not state.step:
        return None, None
    end = state.ended_at or now or time.time()
    elapsed = max(end - state.started_at, 1e-9)
    rate = state.step / elapsed
    if state.total and rate > 0 and not state.terminal:
        return rate, max(state.total - state.step, 0) / rate
    return rate, None


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_line(state: RunState, width: int = 24) -> str:
    status = state.status or "pending"
    parts = [f"{status:<9}"]
    if state.total:
        done = min((state.step or 0) / state.total, 1.0)
        fill = int(done * width)
        parts.append(f"[{'#' * fill}{'.' * (width - fill)}] {state.step or 0}/{state.total}")
    elif state.step is not None:
        parts.append(f"step {state.step}")
    loss = state.last.get("train/loss")
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    eval_loss = state.last.get("eval/loss")
    if eval_loss is not None:
        parts.append(f"eval {eval_loss:.4f}")
    rate, eta = rate_and_eta(state)
    if rate:
        parts.append(f"{rate:.2f} step/s")
    if eta is not None:
        parts.append(f"ETA {fmt_duration(eta)}")
    return "  ".join(parts)


def describe_run(run: Any) -> str:
    """A multi-line summary for ``tunixrt show`` and ``%tunix_show`` in text mode."""
    state = run.state()
    cfg = run.config
    duration = (state.ended_at or time.time()) - state.started_at if state.started_at else None
    lines = [
        f"{run.id}  {cfg.display_name}",
        f"  status     {state.status}" + (f"  ({state.error})" if state.error else ""),
        f"  model      {cfg.model.label}{' + LoRA' if cfg.model.lora.enabled else ''}",
        f"  dataset    {cfg.dataset.label}",
        f"  mode       {cfg.run.mode}   executor {cfg.run.executor}   "
        f"platform {state.platform or cfg.run.platform}",
        f"  progress   {progress_line(state)}",
        f"  duration   {fmt_duration(duration)}",
    ]
    for name in ("train/loss", "eval/loss"):
        if name in state.last:
            lines.append(f"  {name:<10} last {state.last[name]:.4f}  best {state.best[name]:.4f}")
    for ck in state.checkpoints[-1:]:
        lines.append(f"  checkpoint {ck.get('path')} (step {ck.get('step')})")
    for art in state.artifacts:
        lines.append(f"  artifact   {art.get('name')}: {art.get('path')}")
    lines.append(f"  folder     {run.dir}")
    return "\n".join(lines)
