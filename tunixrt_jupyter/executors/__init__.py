"""Executors start a run's work somewhere and report when it ends; see ``base.Executor``."""

from __future__ import annotations

from .base import Execution, Executor, get_executor

__all__ = ["Execution", "Executor", "get_executor"]
