"""Code-mode runs in a background Jupyter kernel (``%%tunix_run --code``).

``start`` launches an ipykernel with this very Python (``sys.executable``: the notebook's
environment, whatever kernelspecs are installed) in its own session, so cancel can kill
the whole process tree and a Ctrl-C in the notebook never reaches it; its cwd is the
notebook's, so the cell's relative paths work. The kernel is a child of the notebook
process (``JPY_PARENT_PID``): if the notebook dies, the kernel exits and the run becomes
``lost``, never an orphan training on.

A runner thread then drives the kernel over jupyter_client:

1. bootstrap (``codemode_runtime.KernelSession``): ``TUNIXRT_RUN_DIR``, the ``--in``
   variables, the Tunix metrics/progress capture, then a concurrency slot (``pending``
   until one is free) -> ``running``;
2. the body, compiled as ``<tunix_run cell>``; iopub output (stream, display_data,
   execute_result, error) is appended line by line to ``stdout.log``/``stderr.log``;
3. the result (user_expressions): ok -> ``--out`` pickles loaded into the Run handle,
   then ``completed``; an exception -> an ``error`` event with the user's traceback and
   ``failed``; a stop -> ``cancelled``/``timeout``;
4. the kernel is shut down and its process group killed (unless ``--keep-kernel``).

Cancel: ``request_stop`` (the Tunix step hook also checks it), interrupt the kernel
(KeyboardInterrupt in the cell), wait up to ``grace_s`` for the cell to end, then kill
the kernel's whole process group.
"""

from __future__ import annotations

import ast
import json
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..lifecycle import is_terminal, transition
from ..procinfo import ProcessRecord
from ..stop import request_stop, stop_reason
from .process_group import terminate_group

KERNEL_NAME = "tunixrt-python"
CONNECTION_FILE = "kernel.json"
KERNEL_LOG = "kernel.log"
READY_TIMEOUT_S = 120.0
POLL_S = 0.1
STOP_FILE_CHECK_S = 0.5
SHUTDOWN_GRACE_S = 5.0
IDLE_WAIT_S = 5.0
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

_KEPT: dict[str, Any] = {}  # run_id -> KernelManager of --keep-kernel runs (kept referenced)


def _kernel_spec_manager() -> Any:
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    class _ThisPythonSpecs(KernelSpecManager):
        """Always this interpreter: a user's installed ``python3`` spec may be another env."""

        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            if kernel_name != KERNEL_NAME:
                return super().get_kernel_spec(kernel_name)
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="tunixrt code run", language="python", interrupt_mode="signal",
                env={}, metadata={},
            )

    return _ThisPythonSpecs()


def _package_parent() -> str:
    return str(Path(__file__).resolve().parent.parent.parent)


def _literal(data: dict) -> Any:
    """A ``text/plain`` repr of a str (what user_expressions hand back) -> the str."""
    text = data.get("text/plain", "")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


class _Reply:
    def __init__(self) -> None:
        self.content: dict | None = None
        self.idle = False
        self.replied_at: float | None = None

    @property
    def done(self) -> bool:
        return self.content is not None and self.idle


class KernelExecution:
    """One code run in a background kernel; ``poll``/``cancel`` for the supervisor."""

    def __init__(self, run_dir: Path, config: RunConfig, km: Any, record: ProcessRecord):
        from ..codemode_logs import LogSink

        self.run_dir, self.config, self.km, self.record = run_dir, config, km, record
        self.grace_s = config.run.grace_s
        self.sink = LogSink(run_dir)
        self.source_spec: dict = json.loads((run_dir / "code.json").read_text())
        self.keep_kernel = bool(self.source_spec.get("keep_kernel"))
        self._exit_code: int | None = None
        self._stop_reason: str | None = None
        self._stop_lock = threading.Lock()
        self._interrupted_at: float | None = None
        self._running_at: float | None = None
        self._kc: Any = None
        self._shut_down = False
        self._thread = threading.Thread(target=self._main, name=f"tunixrt-kernel-{run_dir.name}",
                                        daemon=True)

    # -- the Execution protocol -------------------------------------------------------

    def poll(self) -> int | None:
        return self._exit_code

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask to stop; the runner thread interrupts, waits ``grace_s``, then kills."""
        request_stop(self.run_dir, reason)
        with self._stop_lock:
            if self._stop_reason is None:
                self._stop_reason = stop_reason(self.run_dir) or reason

    # -- the runner thread --------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        code = 1
        try:
            code = self._drive()
        except Exception as exc:  # noqa: BLE001 - whatever broke, the run must end visibly
            if not is_terminal(self._status()):
                self._fail(f"tunixrt lost control of the kernel: {type(exc).__name__}: {exc}")
        finally:
            self.sink.flush()
            if not self.keep_kernel or code != 0:
                self._shutdown()
            elif self._kc is not None:
                self._kc.stop_channels()
                self._kc = None
            self._exit_code = code

    def _status(self) -> str | None:
        from ..events import current_status

        return current_status(self.run_dir)

    def _fail(self, message: str, traceback_text: str | None = None) -> None:
        from ..events import append_event

        append_event(self.run_dir, "error", message=message, traceback=traceback_text or "")
        self.sink.line("stderr", traceback_text or message)
        self._shutdown()  # a final status means the kernel is gone
        transition(self.run_dir, "failed", error=message)

    def _drive(self) -> int:
        kc = self._kc = self.km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=READY_TIMEOUT_S)
        except RuntimeError as exc:
            return self._died_or_fail(f"the background kernel did not start: {exc}")

        boot = (
            "import sys as _sys\n"
            f"if {_package_parent()!r} not in _sys.path: _sys.path.append({_package_parent()!r})\n"
            "from tunixrt_jupyter.codemode_runtime import kernel_bootstrap as _tunixrt_boot\n"
            f"__tunixrt__ = _tunixrt_boot({str(self.run_dir)!r})\n"
            "del _sys, _tunixrt_boot\n"
            "_tunixrt_state = __tunixrt__.acquire()\n"
        )
        reply = self._execute(boot, {"state": "__tunixrt__.state"}, phase="bootstrap")
        if reply is None or self._stopping():
            return self._after_stop_or_death(cell_ended=reply is not None)
        if reply.get("status") != "ok":
            return self._reply_failure(reply, "could not prepare the background kernel")
        state = _literal(reply.get("user_expressions", {}).get("state", {}).get("data", {}))
        if state != "ready" or (not transition(self.run_dir, "running")
                                and is_terminal(self._status())):
            return self._end_stopped(cell_ended=True)  # stopped while it waited for a slot
        self._running_at = time.monotonic()

        reply = self._execute("__tunixrt__.run_body()", {"r": "__tunixrt__.result_json()"},
                              phase="body")
        if reply is None:
            return self._after_stop_or_death(cell_ended=False)
        expr = reply.get("user_expressions", {}).get("r", {})
        if reply.get("status") != "ok" or expr.get("status") != "ok":
            if self._stopping():
                return self._end_stopped(cell_ended=True)
            failed = expr if reply.get("status") == "ok" else reply
            return self._reply_failure(failed, "the cell failed")
        return self._finish(json.loads(_literal(expr.get("data", {}))))

    def _stopping(self) -> bool:
        return bool(self._stop_reason or stop_reason(self.run_dir))

    def _finish(self, result: dict) -> int:
        status = result.get("status")
        if status in ("stopped", "interrupted") or (status != "ok" and self._stopping()):
            return self._end_stopped(cell_ended=True)
        if status == "error":
            self._fail(result.get("message") or "the cell raised an exception",
                       result.get("traceback"))
            return 1
        from ..codemode_outputs import deliver_saved_outputs

        deliver_saved_outputs(self.run_dir, result.get("outputs"), self.sink)
        if self.keep_kernel:
            self._keep()
        else:
            self._shutdown()
        transition(self.run_dir, "completed")
        return 0

    def _keep(self) -> None:
        """Leave the kernel up for ``tunixrt_jupyter.codemode.attach``; free its slot."""
        from ..events import append_event

        self._execute("__tunixrt__.release()", {}, phase="release")
        _KEPT[self.run_dir.name] = self.km
        append_event(self.run_dir, "info", key="kernel",
                     value={"connection_file": str(self.run_dir / CONNECTION_FILE),
                            "pid": self.record.pid})
        self.sink.line("stdout", f"tunixrt: kernel kept; attach with "
                                 f"`jupyter console --existing {self.run_dir / CONNECTION_FILE}`"
                                 " or tunixrt_jupyter.codemode.attach(run)")

    def _end_stopped(self, cell_ended: bool) -> int:
        reason = self._stop_reason or stop_reason(self.run_dir) or "cancelled"
        if not cell_ended and self.km.is_alive():
            self.sink.line("stderr", f"tunixrt: the cell did not stop within grace_s="
                                     f"{self.grace_s:g}s of the interrupt; killing the kernel")
        self._shutdown()
        transition(self.run_dir, reason)
        return -(signal.SIGINT if cell_ended else signal.SIGKILL)

    def _after_stop_or_death(self, cell_ended: bool) -> int:
        if self._stopping():
            return self._end_stopped(cell_ended)
        return self._died_or_fail("the background kernel died")

    def _died_or_fail(self, message: str) -> int:
        code = self._kernel_returncode()
        if code is not None:
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            self.sink.line("stderr", f"tunixrt: the background kernel died ({how})")
            return code if code != 0 else 1  # the supervisor's finalize names the death
        self._fail(message)
        return 1

    def _reply_failure(self, content: dict, what: str) -> int:
        from ..codemode_logs import strip_ansi

        tb = strip_ansi("\n".join(content.get("traceback") or []))
        ename, evalue = content.get("ename", "Error"), content.get("evalue", "")
        self._fail(f"{what}: {ename}: {evalue}", tb or None)
        return 1

    # -- talking to the kernel ----------------------------------------------------------

    def _execute(self, code: str, expressions: dict[str, str], phase: str) -> dict | None:
        """Run ``code``; its output goes to the logs. None when stopped or the kernel died."""
        kc = self._kc
        msg_id = kc.execute(code, silent=False, store_history=False,
                            user_expressions=expressions, allow_stdin=False,
                            stop_on_error=False)
        reply = _Reply()
        last_file_check = 0.0
        while not reply.done:
            self._pump_iopub(msg_id, reply)
            self._pump_shell(msg_id, reply)
            if reply.done:
                break
            now = time.monotonic()
            if reply.content is not None:  # replied; idle on iopub should follow at once
                reply.replied_at = reply.replied_at or now
                if now - reply.replied_at > IDLE_WAIT_S:
                    break
            if now - last_file_check > STOP_FILE_CHECK_S:
                last_file_check = now
                if self._stop_reason is None and stop_reason(self.run_dir):
                    self.cancel(stop_reason(self.run_dir) or "cancelled")  # from elsewhere
                if not self.km.is_alive():
                    self._drain_iopub(msg_id, reply)
                    return None
            if phase == "body":
                self._check_timeout(now)
            if self._stop_reason is not None and phase != "release":
                if self._interrupted_at is None:
                    self._interrupted_at = now
                    try:
                        self.km.interrupt_kernel()
                    except Exception:  # noqa: BLE001 - a dead kernel cannot be interrupted
                        pass
                elif now - self._interrupted_at > self.grace_s:
                    return None
        return reply.content

    def _check_timeout(self, now: float) -> None:
        timeout = self.config.run.timeout_s
        started = self._running_at
        if timeout and started is not None and self._stop_reason is None \
                and now - started > timeout:
            self.sink.line("stderr", f"tunixrt: run.timeout_s={timeout:g} reached; stopping")
            self.cancel("timeout")

    def _pump_shell(self, msg_id: str, reply: _Reply) -> None:
        try:
            msg = self._kc.get_shell_msg(timeout=0)
        except queue.Empty:
            return
        if msg.get("parent_header", {}).get("msg_id") == msg_id:
            reply.content = msg.get("content", {})

    def _pump_iopub(self, msg_id: str, reply: _Reply, timeout: float = POLL_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                msg = self._kc.get_iopub_msg(timeout=max(left, 0))
            except queue.Empty:
                return
            self._on_iopub(msg, msg_id, reply)
            if left <= 0:
                return

    def _drain_iopub(self, msg_id: str, reply: _Reply) -> None:
        while True:
            try:
                msg = self._kc.get_iopub_msg(timeout=0)
            except queue.Empty:
                return
            self._on_iopub(msg, msg_id, reply)

    def _on_iopub(self, msg: dict, msg_id: str, reply: _Reply) -> None:
        kind, content = msg.get("msg_type"), msg.get("content", {})
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            return
        if kind == "status":
            reply.idle = reply.idle or content.get("execution_state") == "idle"
        elif kind == "stream":
            self.sink.write(content.get("name", "stdout"), content.get("text", ""))
        elif kind in ("display_data", "execute_result"):
            data = content.get("data", {})
            if WIDGET_MIME not in data and "text/plain" in data:
                self.sink.line("stdout", str(data["text/plain"]))
        elif kind == "error":
            from ..codemode_logs import strip_ansi

            self.sink.line("stderr", strip_ansi("\n".join(content.get("traceback") or [])))

    # -- ending -------------------------------------------------------------------------

    def _kernel_returncode(self) -> int | None:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is None:
            return None
        try:
            return process.wait(timeout=SHUTDOWN_GRACE_S)
        except Exception:  # noqa: BLE001 - still running or not a Popen
            return process.poll()

    def _shutdown(self) -> None:
        """Stop the kernel and everything left in its process group (once)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.sink.flush()
        if self._kc is not None:
            try:
                self._kc.stop_channels()
            except Exception:  # noqa: BLE001
                pass
            self._kc = None
        try:
            if self.km.is_alive():
                self.km.shutdown_kernel(now=self._stop_reason is not None)
        except Exception:  # noqa: BLE001 - fall through to the group kill
            pass
        try:
            if self.record.group_pids():
                terminate_group(self.record, SHUTDOWN_GRACE_S)
        except RuntimeError:
            pass
        try:
            self.km.cleanup_resources()
        except Exception:  # noqa: BLE001
            pass


class KernelExecutor:
    name = "kernel"

    def start(self, run_dir: Path, config: RunConfig, env: dict[str, str]) -> KernelExecution:
        from jupyter_client import KernelManager

        run_dir = Path(run_dir)
        if not (run_dir / "code.json").is_file():
            raise ValueError("the kernel executor runs %%tunix_run --code cells only; "
                             "use executor subprocess or inline for config runs")
        spec = json.loads((run_dir / "code.json").read_text())
        km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=_kernel_spec_manager())
        km.connection_file = str(run_dir / CONNECTION_FILE)
        kernel_env = {**os.environ, **env, "TUNIXRT_RUN_DIR": str(run_dir),
                      "PYTHONUNBUFFERED": "1"}
        with open(run_dir / KERNEL_LOG, "ab") as log:
            km.start_kernel(env=kernel_env, cwd=spec.get("cwd") or os.getcwd(),
                            stdout=log, stderr=log)
        record = ProcessRecord.for_pid(km.provisioner.pid, self.name)
        record.save(run_dir)
        execution = KernelExecution(run_dir, config, km, record)
        execution.start()
        return execution


def kept_kernel(run_id: str) -> Any:
    """The KernelManager of a ``--keep-kernel`` run started by this process, if any."""
    return _KEPT.get(run_id)
