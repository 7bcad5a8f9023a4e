"""The last lines of a run's raw output, read backwards from the end of the files.

A run's logs can be millions of lines; reading blocks from the end keeps ``Run.logs(n)``
and ``tunixrt logs -n`` fast whatever the file size.
"""

from __future__ import annotations

import os
from pathlib import Path

BLOCK = 64 * 1024


def tail_lines(path: str | os.PathLike, n: int) -> list[str]:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return []
    with f:
        f.seek(0, os.SEEK_END)
        pos = f.tell()
        data = b""
        while pos > 0 and data.count(b"\n") <= n:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-n:] if n > 0 else []


def tail_run_logs(run_dir: Path, n: int = 100, stream: str | None = None) -> list[str]:
    """Last ``n`` lines of stdout, stderr, or both (stdout first, then stderr, each in order)."""
    if stream in ("stdout", "stderr"):
        return tail_lines(run_dir / f"{stream}.log", n)
    out = tail_lines(run_dir / "stdout.log", n)
    err = [f"[stderr] {line}" for line in tail_lines(run_dir / "stderr.log", n)]
    from .events import iter_events

    logged = [
        (f"[stderr] {ev.get('line', '')}" if ev.get("stream") == "stderr" else ev.get("line", ""))
        for ev in iter_events(run_dir) if ev.get("type") == "log"
    ]
    return (out + err + logged)[-n:]
