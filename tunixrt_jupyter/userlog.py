"""``tunixrt.log(step=None, **scalars)``: your own metrics from inside a code-mode run.

Inside ``%%tunix_run --code`` (kernel or inline) each keyword becomes a ``metric`` event of
the run, next to the ones Tunix records, e.g. ``tunixrt.log(step=10, reward=0.5)``.
Anywhere else it does nothing and warns once, so a cell works both inside and outside a run.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from .events import append_event

__all__ = ["log"]

_warned = False


def _current_run_dir() -> str | None:
    from .codemode_capture import current_context

    context = current_context()
    if context is not None:
        return str(context.run_dir)
    run_dir = os.environ.get("TUNIXRT_RUN_DIR")
    return run_dir if run_dir and os.path.isdir(run_dir) else None


def log(step: int | None = None, **scalars: Any) -> None:
    """Record ``name=value`` scalars as metrics of the current run, at ``step`` (optional)."""
    from .codemode_capture import as_float, as_step

    global _warned
    run_dir = _current_run_dir()
    if run_dir is None:
        if not _warned:
            _warned = True
            warnings.warn("tunixrt.log() outside a tunixrt run does nothing; run the cell "
                          "with %%tunix_run --code to record metrics", stacklevel=2)
        return
    if step is not None and as_step(step) is None:
        raise TypeError(f"tunixrt.log: step must be a whole number, got {step!r}")
    values = {}
    for name, value in scalars.items():
        number = as_float(value)
        if number is None:
            raise TypeError(f"tunixrt.log: {name}={value!r} is not a number")
        values[name] = number
    for name, number in values.items():
        append_event(run_dir, "metric", name=name, value=number, step=as_step(step))
