"""Runs in a thread of the notebook's own process: for an accelerator the kernel already holds.

Only one process may own a TPU, so when the notebook kernel has initialised JAX on it, the
run must train in that same process. Two kinds of run:

* a code run (``%%tunix_run --code --executor inline``): the cell's body runs in a fresh
  namespace seeded with the ``--in`` objects themselves (no pickling); ``--out`` objects
  come back as they are;
* a config run (``run.executor: inline``): the worker's ``run_worker`` runs in the thread
  with a stop flag of its own instead of signal handlers.

The thread's own ``print``s (and only its) go to ``stdout.log``/``stderr.log``. Nothing can
kill a thread, so cancel only asks: code runs stop at the next Tunix training step
(``codemode_capture``'s step hook raises there), config runs at the worker's next batch.
A code run that is not in Tunix code says so in its log and becomes ``cancelled`` when
the cell returns by itself. The process record is the notebook's own process: if the
kernel dies, the run becomes ``lost``.
"""

from __future__ import annotations

import builtins
import os
import signal
import threading
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..lifecycle import is_terminal, transition
from ..procinfo import ProcessRecord
from ..stop import request_stop, stop_reason

STOP_FILE_CHECK_S = 0.5


class InlineExecution:
    def __init__(self, run_dir: Path, config: RunConfig):
        from ..codemode_logs import LogSink

        self.run_dir, self.config = run_dir, config
        self.sink = LogSink(run_dir)
        self._exit_code: int | None = None
        self._thread: threading.Thread | None = None
        self._stop_lock = threading.Lock()
        self._stop_reason: str | None = None
        self._notice_timer: threading.Timer | None = None

    def poll(self) -> int | None:
        return self._exit_code

    def start(self, target: Any) -> None:
        self._thread = threading.Thread(target=self._main, args=(target,),
                                        name=f"tunixrt-inline-{self.run_dir.name}", daemon=True)
        self._thread.start()

    def cancel(self, reason: str = "cancelled") -> None:
        request_stop(self.run_dir, reason)
        with self._stop_lock:
            if self._stop_reason is not None:
                return
            self._stop_reason = stop_reason(self.run_dir) or reason
        self._on_cancel()

    def _on_cancel(self) -> None:
        """Set whatever flag the running work checks."""

    def _main(self, target: Any) -> None:
        from ..codemode_logs import ROUTER

        ident = threading.get_ident()
        ROUTER.capture(ident, self.sink)
        code = 1
        try:
            code = target()
        except BaseException as exc:  # noqa: BLE001 - the thread must always end the run
            from ..codemode_runtime import error_result

            if not is_terminal(self._status()):
                self._fail(error_result(exc), "tunixrt's inline runner failed")
        finally:
            ROUTER.release(ident)
            self.sink.flush()
            if self._notice_timer is not None:
                self._notice_timer.cancel()
            self._exit_code = code

    def _status(self) -> str | None:
        from ..events import current_status

        return current_status(self.run_dir)

    def _fail(self, result: dict, what: str = "the cell raised an exception") -> int:
        from ..events import append_event

        message = result.get("message") or what
        append_event(self.run_dir, "error", message=message,
                     traceback=result.get("traceback", ""))
        self.sink.line("stderr", result.get("traceback") or message)
        transition(self.run_dir, "failed", error=message)
        return 1

    def _end_stopped(self, **details: Any) -> int:
        transition(self.run_dir, self._stop_reason or stop_reason(self.run_dir) or "cancelled",
                   **details)
        return -signal.SIGINT


class InlineCodeExecution(InlineExecution):
    """A ``%%tunix_run --code`` body in this process."""

    def __init__(self, run_dir: Path, config: RunConfig, inputs: dict[str, Any]):
        from ..codemode_capture import CaptureContext

        super().__init__(run_dir, config)
        self.inputs = inputs
        self.context = CaptureContext(run_dir)

    def _on_cancel(self) -> None:
        self.context.stop_event.set()
        steps_before = self.context.steps_seen
        grace = self.config.run.grace_s

        def notice() -> None:
            if self._exit_code is None and self.context.steps_seen == steps_before:
                self.sink.line("stderr", (
                    f"tunixrt: stop requested, but no Tunix training step started within "
                    f"{grace:g}s: an inline run can only stop at a Tunix step (it runs in the "
                    "notebook's own process, where nothing else can be interrupted). It will "
                    "be marked cancelled when the cell's code returns."))

        self._notice_timer = threading.Timer(grace, notice)
        self._notice_timer.daemon = True
        self._notice_timer.start()

    def run(self) -> int:
        from ..codemode_capture import bind_thread, install
        from ..codemode_outputs import deliver, record_saved
        from ..codemode_runtime import dump_outputs, read_spec, run_code
        from ..slots import acquire_slot

        source, spec = read_spec(self.run_dir)
        install()
        bind_thread(self.context)
        timer = None
        try:
            slot = acquire_slot(self.run_dir.parent.parent / "slots", self.run_dir.name,
                                self.config.run.max_concurrent,
                                should_stop=self.context.should_stop)
            if slot is None:
                return self._end_stopped()
            try:
                if not transition(self.run_dir, "running") and is_terminal(self._status()):
                    return self._end_stopped()  # cancelled while it waited for the slot
                if self.config.run.timeout_s:
                    timer = threading.Timer(self.config.run.timeout_s, self._timed_out)
                    timer.daemon = True
                    timer.start()
                namespace = {"__name__": "__main__", "__builtins__": builtins, **self.inputs}
                result = run_code(source, namespace)
            finally:
                slot.release()
            if result["status"] != "ok" and self.context.should_stop():
                return self._end_stopped()
            if result["status"] == "error":
                return self._fail(result)
            if result["status"] != "ok":
                return self._end_stopped()
            names = list(spec.get("outputs") or [])
            values = {name: namespace[name] for name in names if name in namespace}
            dumped = dump_outputs(namespace, names, self.run_dir)
            record_saved(self.run_dir, dumped["saved"], dumped["problems"], self.sink)
            deliver(self.run_dir, values)
            if self.context.should_stop():  # asked to stop, but the cell ended by itself
                return self._end_stopped()
            transition(self.run_dir, "completed")
            return 0
        finally:
            if timer is not None:
                timer.cancel()
            bind_thread(None)
            self.context.close()

    def _timed_out(self) -> None:
        if self._exit_code is None:
            self.sink.line("stderr", f"tunixrt: run.timeout_s={self.config.run.timeout_s:g} "
                                     "reached; stopping at the next Tunix step")
            self.cancel("timeout")


class InlineWorkerExecution(InlineExecution):
    """A config run: the worker's ``run_worker`` in this thread, stopped by its flag."""

    def __init__(self, run_dir: Path, config: RunConfig):
        from ..worker.signals import StopFlag

        super().__init__(run_dir, config)
        self.flag = StopFlag()
        # run_worker's timeout watchdog must not os._exit this (the notebook's) process
        self.flag.in_process = True  # type: ignore[attr-defined]

    def _on_cancel(self) -> None:
        self.flag.set()

    def run(self) -> int:
        from ..worker.main import run_worker

        done = threading.Event()
        watcher = threading.Thread(target=self._watch_stop_file, args=(done,), daemon=True,
                                   name=f"tunixrt-inline-stop-{self.run_dir.name}")
        watcher.start()
        try:
            return run_worker(self.run_dir, stop=self.flag)
        finally:
            done.set()

    def _watch_stop_file(self, done: threading.Event) -> None:
        """A cancel from another process (``tunixrt cancel``) only writes the stop file."""
        while not done.wait(STOP_FILE_CHECK_S):
            reason = stop_reason(self.run_dir)
            if reason:
                self.cancel(reason)
                return


class InlineExecutor:
    name = "inline"

    def start(self, run_dir: Path, config: RunConfig, env: dict[str, str]) -> InlineExecution:
        from ..codemode_runtime import is_code_run, take_live_inputs

        run_dir = Path(run_dir)
        for key, value in env.items():  # tokens etc.: this process is the run's process
            os.environ.setdefault(key, value)
        execution: InlineExecution
        if is_code_run(run_dir):
            execution = InlineCodeExecution(run_dir, config, take_live_inputs(run_dir))
        else:
            execution = InlineWorkerExecution(run_dir, config)
        ProcessRecord.for_pid(os.getpid(), self.name).save(run_dir)
        execution.start(execution.run)
        return execution
