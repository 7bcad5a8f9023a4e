"""Run every benchmark and print each figure beside its anchor, with the ratio."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest  # noqa: E402
import bench_launch  # noqa: E402
import bench_overhead  # noqa: E402

# Anchors: goals from the issues, and rates measured on this machine class (DESIGN.md).
ANCHORS = {
    "launch return (ms)": 500.0,
    "ingest events/s": 200_000.0,
    "file append lines/s": 600_000.0,
    "supervised/bare steps/s": 0.98,
}


def row(name: str, value: float) -> str:
    anchor = ANCHORS.get(name)
    ratio = f"{value / anchor:6.2f}x" if anchor else "      "
    anchor_s = f"{anchor:>14,.2f}" if anchor is not None else " " * 14
    return f"{name:<28}{value:>14,.2f}{anchor_s}  {ratio}"


def main() -> None:
    print(f"{'benchmark':<28}{'measured':>14}{'anchor':>14}  ratio")
    launch = bench_launch.measure()
    print(row("launch return (ms)", launch["return_s"] * 1000))
    print(row("dry-run to running (ms)", launch["dry_running_s"] * 1000))
    print(row("real run to running (ms)", launch["real_running_s"] * 1000))
    ingest = bench_ingest.measure()
    print(row("ingest events/s", ingest["ingest_events_per_s"]))
    print(row("file append lines/s", ingest["append_lines_per_s"]))
    print(row("ingest / append", ingest["ratio"]))
    overhead = bench_overhead.measure()
    print(row("bare steps/s", overhead["bare_steps_per_s"]))
    print(row("tunixrt steps/s", overhead["tunixrt_steps_per_s"]))
    print(row("supervised/bare steps/s", overhead["ratio"]))


if __name__ == "__main__":
    main()
