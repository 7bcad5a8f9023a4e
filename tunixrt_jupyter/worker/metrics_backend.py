"""A metrax logging backend that turns Tunix's scalars into ``metric``/``progress`` events.

Tunix records every scalar through ``jax.monitoring``; ``MetricsLoggerOptions`` with
``backend_kwargs={"custom_backend": [factory]}`` makes this the only backend (no TensorBoard
files, no wandb). Each event is one flushed line in ``events.jsonl``, which the widget and
the catalog read; nothing is buffered, so a killed run loses no acknowledged metric.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..events import EventWriter


class EventsBackend:
    """``log_scalar(event, value, step=...)`` -> events; remembers the latest values."""

    def __init__(self, writer: EventWriter, total_steps: int | None):
        self.writer = writer
        self.total_steps = total_steps
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.last_step: int | None = None

    def log_scalar(self, event: str, value: Any, **kwargs: Any) -> None:
        if event.startswith("/jax/"):  # JAX's own compile/trace counters
            return
        name = event.lstrip("/")
        step = kwargs.get("step")
        step = int(step) if step is not None else None
        number = float(np.asarray(value))
        self.first.setdefault(name, number)
        self.last[name] = number
        self.writer.emit("metric", name=name, value=number, step=step)
        if name == "train/loss" and step is not None:
            self.last_step = step
            self.writer.emit("progress", step=step, total=self.total_steps)

    def close(self) -> None:
        """The writer belongs to the worker, which closes it after the final status."""

    def factory(self) -> EventsBackend:
        """What Tunix calls to 'create' the backend: this very object, so results stay here."""
        return self
