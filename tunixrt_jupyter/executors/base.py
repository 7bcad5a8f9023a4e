"""The executor interface: ``start`` a run folder, ``poll`` its end, ``cancel`` it.

Every executor ends a run the same way: the work itself writes status events through
``lifecycle.transition``; the executor only reports an exit code, so the supervisor can
name what happened when the work died without saying (a signal, a crash).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

from ..config import RunConfig


class Execution(Protocol):
    """One started run, as its executor sees it."""

    run_dir: Path

    def poll(self) -> int | None:
        """None while the work runs; then its exit code (negative: killed by that signal)."""

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the work to stop with ``reason``; escalate after the grace period."""


class Executor(Protocol):
    name: str

    def start(self, run_dir: Path, config: RunConfig, env: dict[str, str]) -> Execution: ...


_EXECUTORS = {
    "subprocess": "tunixrt_jupyter.executors.subprocess_exec:SubprocessExecutor",
    "inline": "tunixrt_jupyter.executors.inline:InlineExecutor",
    "kernel": "tunixrt_jupyter.executors.kernel:KernelExecutor",
}


def get_executor(name: str) -> Executor:
    try:
        target = _EXECUTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown executor {name!r}; choose one of {', '.join(_EXECUTORS)}"
        ) from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)()
