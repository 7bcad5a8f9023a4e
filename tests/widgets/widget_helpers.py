"""Helpers for widget tests: a fake run folder and a collecting real-kernel client.

No mocks: a real ipykernel runs the widget; the test process plays the worker (appending
to the run folder) and the browser (sending comm messages, reading IOPub).

``TUNIXRT_TEST_KERNELS=python3,k-6.29.5,k-7.0.0`` runs the kernel tests on every named
kernelspec (e.g. older ipykernels installed beside this venv) - how the thread delivery was
checked on ipykernel 6 and 7.0.0, where a plain thread's comm send fails.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunixrt_testutil import IopubKernel

ROOT = Path(__file__).resolve().parents[2]

CONFIG_YAML = """\
name: widget-test
model: {family: tiny}
dataset: {source: tiny}
training: {max_steps: 40}
run: {mode: local, executor: subprocess, platform: cpu}
"""


def deadline_wait(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition",
                  interval: float = 0.02) -> Any:
    """Poll ``predicate`` until truthy (synchronisation by condition, not by sleeping)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class RunFolder:
    """A hand-written run folder, appended to the way the worker does (O_APPEND writes)."""

    def __init__(self, home: Path, run_id: str = "20250101-120000-abcdef"):
        self.dir = home / "runs" / run_id
        self.dir.mkdir(parents=True)
        (self.dir / "config.yaml").write_text(CONFIG_YAML)
        self.run_id = run_id

    def event(self, type_: str, **fields: Any) -> None:
        from tunixrt_jupyter.events import append_event

        append_event(self.dir, type_, **fields)

    def log(self, *lines: str, stream: str = "stdout") -> None:
        fd = os.open(self.dir / f"{stream}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, "".join(line + "\n" for line in lines).encode())
        finally:
            os.close(fd)

    def steps(self, first: int, last: int, total: int = 40, eval_every: int = 10) -> list[list]:
        """Progress + train/loss (+ eval/loss) events for steps first..last; returns points."""
        points = []
        for step in range(first, last + 1):
            self.event("progress", step=step, total=total)
            loss = round(5.0 / step, 6)
            self.event("metric", name="train/loss", value=loss, step=step)
            points.append(["train/loss", step, loss])
            if step % eval_every == 0:
                ev = round(5.5 / step, 6)
                self.event("metric", name="eval/loss", value=ev, step=step)
                points.append(["eval/loss", step, ev])
        return points


class KernelSession(IopubKernel):
    """A started kernel collecting every IOPub message, with widget-test helpers."""

    def __init__(self, kernel_name: str, cwd: Path):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        env.pop("TUNIXRT_RENDERER", None)
        super().__init__(kernel_name, cwd, env)

    def execute(self, code: str, timeout: float = 60.0) -> str:
        """Run ``code``; return its stdout; raise on error."""
        reply, msgs = self.run(code, timeout)
        out = "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")
        if reply["status"] != "ok":
            raise AssertionError(f"cell failed: {reply.get('evalue')}\n{out}")
        return out

    def customs(self, comm_id: str, type_: str | None = None) -> list[dict]:
        """Custom widget messages (``widget.send``) in arrival order, with their parent id."""
        out = []
        for m in self.comm_msgs(comm_id):
            data = m["content"]["data"]
            if data.get("method") == "custom" and (type_ is None
                                                   or data["content"].get("type") == type_):
                out.append({**data["content"], "_parent": m["parent_header"].get("msg_id")})
        return out

def kernel_names() -> list[str]:
    names = [n.strip() for n in os.environ.get("TUNIXRT_TEST_KERNELS", "python3").split(",")]
    return [n for n in names if n] or ["python3"]


def make_widget(kernel: KernelSession, run_dir: Path, **kwargs: Any) -> str:
    """Create ``w = RunWidget(run_dir, ...)`` in the kernel; return its comm id."""
    args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    out = kernel.execute(
        "from tunixrt_jupyter.widgets import RunWidget\n"
        f"w = RunWidget({str(run_dir)!r}{args})\n"
        "print(w.comm.comm_id)\n")
    return out.strip().splitlines()[-1]


def view_replay(messages: list[dict]) -> tuple[list[list], list[list], list[int]]:
    """Apply append messages the way run_widget.js does (cursor dedup); returns what a view
    would show: points, log lines, and the ``p0`` gaps it would have had to poll for."""
    points: list[list] = []
    logs: list[list] = []
    gaps: list[int] = []
    next_l = 0
    for msg in messages:
        p0, pts = msg.get("p0", 0), msg.get("points", [])
        if pts:
            if p0 > len(points):
                gaps.append(p0)
            else:
                points.extend(pts[len(points) - p0:])
        l0, lines = msg.get("l0", 0), msg.get("logs", [])
        if lines and l0 + len(lines) > next_l:
            logs.extend(lines[max(0, next_l - l0):])
            next_l = l0 + len(lines)
    return points, logs, gaps


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
