"""Child processes for the store's crash and concurrency tests (run as a script).

``ingest HOME BATCH_ROWS CHUNK_BYTES``: ingest everything in small batches, printing
``commit N`` after each commit so the parent can kill it (SIGKILL) part-way through.

``worker HOME RUN_ID ROUNDS``: a run's writer and a catalog user at once: each round appends
events and output lines to its own run folder, then ingests (blocking or non-blocking, all
runs or its own) and reads the history, like a notebook process with a live run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from store_helpers import T0, append_events, append_raw, make_run, status, training_events

from tunixrt_jupyter.store import Catalog
from tunixrt_jupyter.store.ingest import ingest_runs

PER_ROUND = 40


def ingest(home: str, batch_rows: str, chunk_bytes: str) -> None:
    cat = Catalog(home)
    print("ready", flush=True)

    def report(stats) -> None:
        print(f"commit {stats.transactions}", flush=True)

    with cat.write() as con:
        ingest_runs(con, cat.runs_dir, progress=report, batch_rows=int(batch_rows),
                    chunk_bytes=int(chunk_bytes))
    print("done", flush=True)


def worker(home: str, run_id: str, rounds: str) -> None:
    cat = Catalog(home, timeout=300)
    run = make_run(Path(home), run_id, name=f"worker {run_id[-2:]}", tags=["stress"])
    append_events(run, [status("pending", T0), status("running", T0 + 1)])
    busy = 0
    for r in range(int(rounds)):
        append_events(run, training_events(PER_ROUND, step0=r * PER_ROUND))
        append_raw(run, "stdout.log", "".join(f"{run_id} round {r} line {i}\n" for i in range(25)))
        if r % 3 == 0:
            busy += not cat.try_ingest()
        elif r % 3 == 1:
            cat.ingest(run_ids=[run_id])
        else:
            cat.ingest()
        rows, total = cat.list_runs(tags="stress", limit=100)
        assert total >= 1 and all(row["tags"] == ["stress"] for row in rows)
        if any(row["run_id"] == run_id for row in rows):
            cat.metric_series(run_id, "train/loss")
            cat.logs(run_id, 50)
    append_events(run, [status("completed", T0 + 1e4)])
    cat.ingest()
    print(f"ok busy={busy}", flush=True)


if __name__ == "__main__":
    {"ingest": ingest, "worker": worker}[sys.argv[1]](*sys.argv[2:])
