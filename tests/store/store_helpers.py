"""Run folders written by hand (config.yaml, events.jsonl, stdout/stderr logs) for the store
tests, plus counting what the files hold, so catalog counts can be checked against them.

Also imported by the child processes in ``store_child.py``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import yaml

T0 = 1_750_000_000.0  # fixed event times: deterministic rows


def make_run(home: Path, run_id: str, *, name: str | None = None, tags: list[str] | None = None,
             family: str = "tiny", model_id: str | None = None, source: str = "tiny",
             path: str | None = None, mode: str = "local", executor: str = "subprocess",
             notes: str = "") -> Path:
    """A run folder with a resolved config.yaml shaped like ``RunConfig.to_dict()``."""
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "name": name, "tags": list(tags or []), "notes": notes,
        "model": {"family": family, "id": model_id, "path": None, "source": "auto"},
        "dataset": {"source": source, "path": path, "text_field": "text"},
        "training": {"max_steps": 40, "learning_rate": 0.003},
        "run": {"mode": mode, "executor": executor, "platform": "auto", "timeout_s": None},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return run_dir


def append_events(run_dir: Path, events: list[dict[str, Any]], partial: str = "") -> None:
    """Append complete event lines, then optionally an unfinished line (no newline)."""
    data = "".join(json.dumps(e) + "\n" for e in events) + partial
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(data)


def append_raw(run_dir: Path, file: str, text: str) -> None:
    with open(run_dir / file, "a") as f:
        f.write(text)


def training_events(n: int, t0: float = T0, step0: int = 0) -> list[dict[str, Any]]:
    """``n`` events of a training loop: loss, lr, an eval every 10 steps, progress."""
    out: list[dict[str, Any]] = []
    for i in range(step0, step0 + n):
        t = t0 + i * 0.01
        kind = i % 4
        if kind == 0:
            out.append({"t": t, "type": "metric", "name": "train/loss", "value": 5.0 / (i + 1),
                        "step": i})
        elif kind == 1:
            out.append({"t": t, "type": "metric", "name": "train/learning_rate", "value": 0.003,
                        "step": i})
        elif kind == 2:
            out.append({"t": t, "type": "progress", "step": i, "total": 10_000})
        else:
            out.append({"t": t, "type": "log", "stream": "stdout", "line": f"inline line {i}"})
    return out


def status(s: str, t: float, **extra: Any) -> dict[str, Any]:
    return {"t": t, "type": "status", "status": s, **extra}


def complete_lines(path: Path) -> list[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data[: data.rfind(b"\n") + 1].splitlines()


def file_counts(run_dir: Path) -> dict[str, int]:
    """What the run's files hold (complete lines only), by catalog table."""
    events = [json.loads(line) for line in complete_lines(run_dir / "events.jsonl")
              if line.strip()]
    types = Counter(e["type"] for e in events)
    raw = len(complete_lines(run_dir / "stdout.log")) + len(complete_lines(run_dir / "stderr.log"))
    return {
        "metrics": types["metric"],
        "logs": types["log"] + raw,
        "status_transitions": types["status"],
        "artifacts": types["artifact"] + types["checkpoint"],
    }


TABLES = ("metrics", "logs", "status_transitions", "artifacts")


def catalog_counts(db: Path, run_id: str) -> dict[str, int]:
    """Rows per table for one run, read straight from the file (caller holds no lock)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [run_id]
                               ).fetchone()[0] for t in TABLES}
    finally:
        con.close()


def duplicate_log_seqs(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM (SELECT run_id, seq FROM logs "
                           "GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
    finally:
        con.close()


def env_for_children() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": root + (os.pathsep + path if path else "")}
