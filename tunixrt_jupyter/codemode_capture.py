"""Metrics, progress and stop for code-mode runs, with no change to the user's Tunix code.

Two class-level wraps are installed when Tunix is imported (at once if it already is):

* ``tunix.sft.metrics_logger.MetricsLogger.log``: every scalar Tunix records (PeftTrainer,
  DPO, distillation, and the RL cluster's logger, GRPO/PPO) also becomes a ``metric`` event.
  Wrapping ``log`` rather than adding a metrax backend means it works whatever
  ``metrics_logging_options`` the user passed (none at all included), leaves their own
  backends (TensorBoard, wandb, a custom one) untouched, and survives
  ``MetricsLogger.close()`` clearing every ``jax.monitoring`` listener.
* ``tunix.sft.peft_trainer.PeftTrainer.train``: tells the backend the run's total
  (``config.max_steps``), so each ``train/loss`` also writes a ``progress`` event, and for
  the length of the call wraps the trainer's ``training_hooks`` in :class:`_RunHooks`,
  which forwards every call to the user's hooks (if any) and, at the start of each step,
  raises :class:`RunStopRequested` when the run was asked to stop.

The scalars go through the worker's own backend (``worker.metrics_backend.EventsBackend``),
so config runs and code runs write identical ``metric``/``progress`` events.

Both do nothing unless the calling thread (inline runs) or the process (a code-mode
kernel) is bound to a :class:`CaptureContext`, so a notebook's own Tunix training outside
tunixrt is never touched.
"""

from __future__ import annotations

import importlib.abc
import inspect
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .events import EventWriter
from .stop import STOP_FILE


class RunStopRequested(BaseException):
    """Raised at a Tunix step boundary when the run was asked to stop (cancel / timeout).

    A BaseException, like KeyboardInterrupt, so a user's ``except Exception`` does not
    swallow it.
    """


def as_float(value: Any) -> float | None:
    """A scalar (Python, numpy, jax) as a float; None for anything that is not one scalar."""
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    try:
        import numpy as np

        arr = np.asarray(value)
        return float(arr.reshape(())) if arr.size == 1 else None
    except Exception:  # noqa: BLE001 - an odd value must never break anything
        return None


def as_step(step: Any) -> int | None:
    if step is None:
        return None
    try:
        return int(step)
    except (TypeError, ValueError):
        return None


def _make_backend(writer: EventWriter) -> Any:
    """The worker's backend (metric + progress events); None without numpy (so no Tunix)."""
    try:
        from .worker.metrics_backend import EventsBackend
    except ImportError:
        return None
    return EventsBackend(writer, None)


class CaptureContext:
    """What the Tunix wraps report to: one run's events, its stop flag, steps seen."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.writer = EventWriter(self.run_dir)
        self.backend = _make_backend(self.writer)
        self.stop_event = threading.Event()
        self.steps_seen = 0  # Tunix step starts observed (inline cancel waits for one)
        self._stop_file = self.run_dir / STOP_FILE

    def should_stop(self) -> bool:
        """Asked to stop here (cancel/timeout) or from any other process (stop file)."""
        return self.stop_event.is_set() or self._stop_file.exists()

    def scalar(self, event: str, value: Any, step: Any) -> None:
        if self.backend is None:
            return
        try:
            self.backend.log_scalar(event, value, step=step)
        except Exception:  # noqa: BLE001 - metrics must never take training down
            pass

    def train_started(self, step: Any, total: Any) -> None:
        """A Tunix ``train()`` began: progress from here, out of ``total`` (max_steps)."""
        total = as_step(total)
        if self.backend is not None and hasattr(self.backend, "total_steps"):
            self.backend.total_steps = total  # its train/loss events carry progress
        step = as_step(step)
        if step is not None:
            self.writer.emit("progress", step=step, total=total)

    def close(self) -> None:
        try:
            if self.backend is not None:
                self.backend.close()
        finally:
            self.writer.close()


_local = threading.local()
_process_context: CaptureContext | None = None


def current_context() -> CaptureContext | None:
    """This thread's run (inline), else this process's run (a code-mode kernel)."""
    return getattr(_local, "context", None) or _process_context


def bind_thread(context: CaptureContext | None) -> None:
    _local.context = context


def bind_process(context: CaptureContext | None) -> None:
    global _process_context
    _process_context = context


# ---------------------------------------------------------------------------------------
# Post-import hooks: patch Tunix when (and only if) the user's code imports it.

_pending: dict[str, list[Callable[[Any], None]]] = {}
_hook_lock = threading.RLock()


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, name: str):
        self._loader, self._name = loader, name

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__spec__.loader = self._loader  # importlib.reload and friends see the real one
        module.__loader__ = self._loader
        self._loader.exec_module(module)
        with _hook_lock:
            callbacks = _pending.pop(self._name, [])
        for callback in callbacks:
            callback(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        with _hook_lock:
            if fullname not in _pending:
                return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader, fullname)  # callbacks run once it is loaded
        return spec


_finder = _PostImportFinder()


def when_imported(module_name: str, callback: Callable[[Any], None]) -> None:
    """Call ``callback(module)`` now if ``module_name`` is imported, else right after it is."""
    with _hook_lock:
        module = sys.modules.get(module_name)
        if module is None:
            _pending.setdefault(module_name, []).append(callback)
            if _finder not in sys.meta_path:
                sys.meta_path.insert(0, _finder)
            return
    callback(module)


def install() -> None:
    """Arrange for the Tunix wraps (idempotent; cheap: imports nothing from Tunix)."""
    with _hook_lock:
        if getattr(install, "_done", False):
            return
        install._done = True  # type: ignore[attr-defined]
    when_imported("tunix.sft.metrics_logger", _patch_metrics_logger)
    when_imported("tunix.sft.peft_trainer", _patch_peft_trainer)


# ---------------------------------------------------------------------------------------
# The wraps themselves.


def _patch_metrics_logger(module: Any) -> None:
    cls = getattr(module, "MetricsLogger", None)
    original = getattr(cls, "log", None)
    if original is None or getattr(original, "__tunixrt_wrapped__", False):
        return
    signature = inspect.signature(original)

    def log(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        context = current_context()
        if context is not None:
            try:
                bound = signature.bind(self, *args, **kwargs).arguments
                event = f"{bound['metrics_prefix']}/{bound['mode']}/{bound['metric_name']}"
                context.scalar(event, bound["scalar_value"], bound.get("step"))
            except (TypeError, KeyError):
                pass  # a Tunix with another signature: its own logging still happened
        return result

    log.__tunixrt_wrapped__ = True  # type: ignore[attr-defined]
    log.__wrapped__ = original  # type: ignore[attr-defined]
    log.__doc__ = original.__doc__
    cls.log = log


def _total_steps(trainer: Any) -> Any:
    config = getattr(trainer, "config", None)
    return getattr(config, "max_steps", None)


def _hooks_class() -> type:
    from tunix.sft import hooks

    class _RunHooks(hooks.TrainingHooks):
        """The user's TrainingHooks (if any) plus tunixrt's progress and stop check."""

        def __init__(self, inner: Any, context: CaptureContext):
            self.inner, self.context = inner, context

        def on_train_start(self, train_ctx: Any) -> None:
            if self.inner:
                self.inner.on_train_start(train_ctx)

        def on_train_end(self, train_ctx: Any) -> None:
            if self.inner:
                self.inner.on_train_end(train_ctx)

        def on_train_step_start(self, train_ctx: Any) -> None:
            self.context.steps_seen += 1
            if self.context.should_stop():
                raise RunStopRequested()
            if self.inner:
                self.inner.on_train_step_start(train_ctx)

        def on_train_step_end(self, train_ctx: Any, train_step: Any, train_loss: Any) -> None:
            if self.inner:
                self.inner.on_train_step_end(train_ctx, train_step, train_loss)

        def on_eval_step_start(self, train_ctx: Any) -> None:
            if self.inner:
                self.inner.on_eval_step_start(train_ctx)

        def on_eval_step_end(self, train_ctx: Any, eval_loss: Any) -> None:
            if self.inner:
                self.inner.on_eval_step_end(train_ctx, eval_loss)

    return _RunHooks


def _patch_peft_trainer(module: Any) -> None:
    cls = getattr(module, "PeftTrainer", None)
    original = getattr(cls, "train", None)
    if original is None or getattr(original, "__tunixrt_wrapped__", False):
        return
    run_hooks_cls = _hooks_class()

    def train(self: Any, *args: Any, **kwargs: Any) -> Any:
        context = current_context()
        if context is None:
            return original(self, *args, **kwargs)
        inner = getattr(self, "training_hooks", None)
        if isinstance(inner, run_hooks_cls):  # a nested train() call: already wrapped
            return original(self, *args, **kwargs)
        ours = run_hooks_cls(inner, context)
        self.training_hooks = ours
        context.train_started(getattr(self, "train_steps", 0), _total_steps(self))
        try:
            return original(self, *args, **kwargs)
        except RunStopRequested:
            _close_quietly(self)  # flush the last metrics, save a checkpoint if configured
            raise
        finally:
            if self.training_hooks is ours:
                self.training_hooks = inner

    train.__tunixrt_wrapped__ = True  # type: ignore[attr-defined]
    train.__wrapped__ = original  # type: ignore[attr-defined]
    train.__doc__ = original.__doc__
    cls.train = train


def _close_quietly(trainer: Any) -> None:
    if getattr(trainer, "is_managed_externally", False):
        return
    try:
        trainer.close()
    except Exception:  # noqa: BLE001 - stopping must not fail on a checkpoint problem
        pass
