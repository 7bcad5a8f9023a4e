"""The kernel side of a live run view: what a browser view has and has not seen yet.

Every renderer (anywidget, plain ipywidgets, text) reads the run folder through one
:class:`RunFeed`. It wraps :class:`~tunixrt_jupyter.live.RunTail` and numbers everything it
hands out: metric points and log lines each get a per-stream sequence number. Views hold
cursors ("I have points < p and log lines < l"), so the same data may safely reach a view
twice (a thread push *and* a poll reply) and is still shown once: the view drops sequence
numbers it already has. That is what lets push (background thread) and pull (browser
poll, the only path that works on Colab) run side by side.

Points are kept for the life of the feed (a chart needs the whole curve); log lines only
as a ring of the last ``max_log_lines`` (the full log stays in ``stdout.log``).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..events import TERMINAL_STATUSES
from ..live import RunState, RunTail

CHART_METRICS = ("train/loss", "eval/loss")
MAX_LINE_CHARS = 4000  # one absurd line must not freeze the browser
INITIAL_LOG_BYTES = 1 << 20  # a new view of a huge log starts this far from the end


@dataclass
class FeedBatch:
    """What is new since a cursor: points from seq ``p0``, log lines from seq ``l0``."""

    p0: int = 0
    points: list[list[Any]] = field(default_factory=list)  # [name, step, value]
    l0: int = 0
    logs: list[list[str]] = field(default_factory=list)  # [stream, line]
    state_changed: bool = False
    lskip: bool = False  # lines before l0 were asked for but are no longer kept

    def __bool__(self) -> bool:
        return bool(self.points or self.logs or self.state_changed)

    def message(self, **extra: Any) -> dict[str, Any]:
        """The ``append`` message both push and pull send (same shape, same dedup).

        ``lskip`` tells a view that a jump in ``l0`` is expected (ring buffer trimmed), so
        it shows a marker instead of asking for lines the kernel no longer has.
        """
        msg = {"type": "append", "p0": self.p0, "points": self.points,
               "l0": self.l0, "logs": self.logs, **extra}
        if self.lskip:
            msg["lskip"] = True
        return msg


def short_id_of(run_id: str) -> str:
    """``20250101-120000-abcdef`` -> ``abcdef`` (what ``Run.short_id`` prints)."""
    return run_id.rsplit("-", 1)[-1] if run_id.count("-") >= 2 else run_id[:8]


def _label_from_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Header fields from a raw ``config.yaml`` dict, tolerant of partial or odd configs.

    The labels mirror ``ModelConfig.label`` / ``DatasetConfig.label`` but work on the raw
    mapping, so a widget never fails because a stored config no longer validates.
    """
    model = cfg.get("model") or {}
    dataset = cfg.get("dataset") or {}
    run = cfg.get("run") or {}
    training = cfg.get("training") or {}
    if isinstance(model, str):
        model_label = model
    else:
        model_label = model.get("id") or (
            Path(model["path"]).name if model.get("path") else model.get("family") or "?")
        if (model.get("lora") or {}).get("enabled"):
            model_label += " + LoRA"
    if isinstance(dataset, str):
        dataset_label = dataset
    else:
        dataset_label = (Path(dataset["path"]).name if dataset.get("path")
                         else dataset.get("source") or "?")
    base_model = model_label.replace(" + LoRA", "")
    name = cfg.get("name") or f"{base_model}-{dataset_label}"
    return {"name": name, "model": model_label, "dataset": dataset_label,
            "mode": run.get("mode") or "local", "executor": run.get("executor") or "subprocess",
            "requested_platform": run.get("platform") or "auto",
            "max_steps": training.get("max_steps")}


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's raw stored config (empty when missing or unreadable)."""
    try:
        import yaml

        data = yaml.safe_load((run_dir / "config.yaml").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, ImportError):
        return {}
    except Exception:  # yaml.YAMLError and friends: a torn file must not break a view
        return {}


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class RunFeed:
    """Sequence-numbered, incremental view of one run folder (thread-safe).

    ``poll()`` reads what is new on disk; ``since(p, l)`` answers a view's cursors;
    ``take_push()`` returns what has not been broadcast yet and marks it broadcast.
    All three take ``lock``; a caller that must keep "compute, then send" atomic (so
    messages leave in sequence order) holds ``lock`` around both.
    """

    def __init__(self, run_dir: str | os.PathLike, *, run_id: str | None = None,
                 max_log_lines: int = 1000, run: Any = None):
        self.run_dir = Path(run_dir).absolute()
        self.run_id = run_id or self.run_dir.name
        self.run = run
        self.max_log_lines = max(10, int(max_log_lines))
        self.lock = threading.RLock()
        self.tail = RunTail(self.run_dir)
        self.points: list[list[Any]] = []
        self.logs: deque[list[str]] = deque(maxlen=self.max_log_lines)
        self.log_seq = 0  # seq of the next log line
        self.pushed_p = 0
        self.pushed_l = 0
        self.rev = 0
        self.config = read_config(self.run_dir)
        self.labels = _label_from_config(self.config)
        self._last_key: tuple[Any, ...] | None = None
        self._last_step: int | None = None
        self._lost_checked = 0.0
        self._skip_to_log_tail()

    # -- reading -------------------------------------------------------------------------
    @property
    def state(self) -> RunState:
        return self.tail.state

    @property
    def status(self) -> str:
        return self.state.status or "pending"

    @property
    def terminal(self) -> bool:
        return self.state.status in TERMINAL_STATUSES

    def _skip_to_log_tail(self) -> None:
        """Start huge logs near their end: a view only ever shows the last lines.

        Skipped bytes are counted as lines only approximately (by newlines), which is all
        the "N earlier lines not shown" marker needs.
        """
        offsets = getattr(self.tail, "_offsets", None)
        if not isinstance(offsets, dict):
            return
        for name in ("stdout.log", "stderr.log"):
            path = self.run_dir / name
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size <= INITIAL_LOG_BYTES or offsets.get(name, 0) != 0:
                continue
            start = size - INITIAL_LOG_BYTES
            with open(path, "rb") as f:
                skipped = 0
                pos = 0
                while pos < start:  # count newlines in the skipped part, block by block
                    block = f.read(min(1 << 20, start - pos))
                    if not block:
                        break
                    skipped += block.count(b"\n")
                    pos += len(block)
                f.seek(start)
                rest = f.read(64 * 1024)
            cut = rest.find(b"\n")
            if cut < 0:
                continue
            offsets[name] = start + cut + 1
            self.log_seq += skipped + 1

    def poll(self) -> FeedBatch:
        """Read the folder; append new points and lines; report whether state changed."""
        with self.lock:
            update = self.tail.poll()
            p0, l0 = len(self.points), self.log_seq
            batch = FeedBatch(p0=p0, l0=l0)
            for ev in update.events:
                kind = ev.get("type")
                if kind == "progress" and isinstance(ev.get("step"), int):
                    self._last_step = ev["step"]
                elif kind == "metric":
                    value = _finite(ev.get("value"))
                    name = ev.get("name")
                    if value is None or not isinstance(name, str):
                        continue
                    step = ev.get("step")
                    if not isinstance(step, (int, float)) or isinstance(step, bool):
                        step = self._last_step if self._last_step is not None else len(self.points)
                    point = [name.lstrip("/"), step, value]
                    self.points.append(point)
                    batch.points.append(point)
            for stream, line in update.logs:
                if len(line) > MAX_LINE_CHARS:
                    line = line[:MAX_LINE_CHARS] + " …"
                entry = ["e" if stream == "stderr" else "o", line]
                self.logs.append(entry)
                self.log_seq += 1
            if update.logs:
                batch.l0, batch.logs = self._logs_from(l0)
            self._check_lost()
            key = self._state_key()
            if key != self._last_key:
                self._last_key = key
                self.rev += 1
                batch.state_changed = True
            return batch

    def _check_lost(self) -> None:
        """Let the engine mark a run whose process vanished ``lost`` (at most every 5 s).

        Only with an engine ``Run`` handle (a hand-made folder has no process to check),
        and only for runs no supervisor in this kernel tracks (it reports those itself).
        The engine writes the ``lost`` event; the tail then reads it like any other.
        """
        if self.run is None or self.terminal:
            return
        now = time.monotonic()
        if now - self._lost_checked < 5.0:
            return
        self._lost_checked = now
        with contextlib.suppress(Exception):
            from ..control import is_lost, reconcile_lost
            from ..supervisor import supervised_execution

            home = getattr(self.run, "home", None)
            if (home is not None and supervised_execution(home, self.run_id) is None
                    and is_lost(self.run_dir)):
                reconcile_lost(home, [self.run_id])

    def _logs_from(self, seq: int) -> tuple[int, list[list[str]]]:
        first = self.log_seq - len(self.logs)
        start = max(seq, first)
        if start >= self.log_seq:
            return self.log_seq, []
        return start, list(self.logs)[start - first:]

    def since(self, p: int = 0, log_seq: int = 0) -> FeedBatch:
        """Everything a view with cursors (``p``, ``log_seq``) lacks (logs: what is kept)."""
        with self.lock:
            p = max(0, min(int(p), len(self.points)))
            log_seq = max(0, int(log_seq))
            l0, logs = self._logs_from(log_seq)
            return FeedBatch(p0=p, points=self.points[p:], l0=l0, logs=logs,
                             lskip=l0 > log_seq)

    def take_push(self) -> FeedBatch:
        """What has not been broadcast yet; marks it broadcast (push and replies share it)."""
        with self.lock:
            batch = self.since(self.pushed_p, self.pushed_l)
            self.mark_pushed()
            return batch

    def mark_pushed(self) -> None:
        """Everything so far went out in a broadcast (a poll reply reaches every view too)."""
        with self.lock:
            self.pushed_p, self.pushed_l = len(self.points), self.log_seq

    # -- derived view state --------------------------------------------------------------
    def _state_key(self) -> tuple[Any, ...]:
        s = self.state
        return (s.status, s.step, s.total, s.started_at, s.ended_at, s.platform, s.error,
                len(s.checkpoints), len(s.artifacts), tuple(sorted(s.last.items())))

    def header(self) -> dict[str, Any]:
        s = self.state
        platform = s.platform or s.info.get("platform") or self.labels["requested_platform"]
        return {"run_id": self.run_id, "short_id": short_id_of(self.run_id),
                "name": self.labels["name"], "model": self.labels["model"],
                "dataset": self.labels["dataset"], "mode": self.labels["mode"],
                "executor": self.labels["executor"], "platform": platform,
                "run_dir": str(self.run_dir), "home": self.home_dir()}

    def home_dir(self) -> str | None:
        """The tunixrt home holding this run (``<home>/runs/<id>``), for the REST cancel."""
        parent = self.run_dir.resolve().parent
        return str(parent.parent) if parent.name == "runs" else None

    def progress(self) -> dict[str, Any]:
        from ..progress import rate_and_eta

        s = self.state
        now = time.time()
        rate, eta = rate_and_eta(s, now)
        total = s.total or self.labels.get("max_steps")
        return {"step": s.step, "total": total, "rate": rate, "eta": eta,
                "created_at": s.created_at, "started_at": s.started_at,
                "ended_at": s.ended_at, "now": now}

    def summary(self) -> dict[str, Any]:
        """Final numbers and paths; filled once the run has ended."""
        s = self.state
        if not self.terminal:
            return {}
        duration = (s.ended_at - s.started_at) if (s.ended_at and s.started_at) else None
        return {
            "final_loss": s.last.get("train/loss"),
            "best_train_loss": s.best.get("train/loss"),
            "last_eval_loss": s.last.get("eval/loss"),
            "best_eval_loss": s.best.get("eval/loss"),
            "duration_s": duration,
            "error": s.error,
            "checkpoints": [{"step": c.get("step"), "path": c.get("path")}
                            for c in s.checkpoints],
            "artifacts": [{"name": a.get("name"), "path": a.get("path"), "kind": a.get("kind")}
                          for a in s.artifacts],
            "run_dir": str(self.run_dir),
        }

    def view_state(self) -> dict[str, Any]:
        """The small synced state (also carried in poll replies for pull-only frontends)."""
        with self.lock:
            return {"status": self.status, "header": self.header(),
                    "progress": self.progress(), "summary": self.summary(), "rev": self.rev}

    def series(self, name: str) -> list[tuple[Any, float]]:
        with self.lock:
            return [(p[1], p[2]) for p in self.points if p[0] == name]
