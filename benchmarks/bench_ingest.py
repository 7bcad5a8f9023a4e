"""Ingest throughput: events/s from ``events.jsonl`` into DuckDB vs a plain file append."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from tunixrt_jupyter.config import load_config
from tunixrt_jupyter.store.catalog import Catalog

N_EVENTS = 200_000


def _lines(n: int) -> list[str]:
    now = time.time()
    return [json.dumps({"t": now + i * 1e-3, "type": "metric", "name": "train/loss",
                        "value": 1.0 / (i + 1), "step": i}) + "\n" for i in range(n)]


def measure(n: int = N_EVENTS) -> dict[str, float]:
    lines = _lines(n)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        run_dir = root / "runs" / "20260101-000000-abcdef"
        run_dir.mkdir(parents=True)
        (run_dir / "config.yaml").write_text(load_config().to_yaml())
        t0 = time.perf_counter()
        with open(run_dir / "events.jsonl", "w") as f:
            for line in lines:
                f.write(line)
        append_s = time.perf_counter() - t0
        catalog = Catalog(root)
        t0 = time.perf_counter()
        catalog.ingest()
        ingest_s = time.perf_counter() - t0
        rows = catalog.metric_series("20260101-000000-abcdef", "train/loss")
        assert len(rows) == n, len(rows)
    return {"append_lines_per_s": n / append_s, "ingest_events_per_s": n / ingest_s,
            "ratio": (n / ingest_s) / (n / append_s)}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
