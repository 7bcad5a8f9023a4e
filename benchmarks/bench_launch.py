"""Launch latency: how long ``tunixrt.run()`` takes to return, and to reach ``running``."""

from __future__ import annotations

import statistics
import tempfile
import time

import tunixrt_jupyter as tunixrt


def _until(predicate, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("run did not reach the state in time")
        time.sleep(0.005)


def measure(repeats: int = 5) -> dict[str, float]:
    out: dict[str, list[float]] = {"return_s": [], "dry_running_s": [], "real_running_s": []}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        for _ in range(repeats):
            t0 = time.perf_counter()
            run = tunixrt.run(dry_run=True, home=home)
            out["return_s"].append(time.perf_counter() - t0)
            _until(lambda r=run: r.status in ("running", "completed"))
            out["dry_running_s"].append(time.perf_counter() - t0)
            run.wait()
        t0 = time.perf_counter()
        run = tunixrt.run(max_steps=3, eval_every_n_steps=3, home=home)
        _until(lambda: run.status in ("running", "completed", "failed"))
        out["real_running_s"].append(time.perf_counter() - t0)
        run.wait()
    return {k: statistics.median(v) for k, v in out.items()}


if __name__ == "__main__":
    for key, value in measure().items():
        print(f"{key:>16}: {value * 1000:8.1f} ms")
