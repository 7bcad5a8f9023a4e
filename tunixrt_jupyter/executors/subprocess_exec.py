"""The default executor: the worker in its own session, output to files, not pipes.

A new session (and so a new process group) lets cancel kill everything the run spawned
and keeps a Ctrl-C in the notebook from reaching it; files instead of pipes let the run
outlive the kernel that started it (measured: with pipes, a dead reader kills writers
with BrokenPipeError).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from ..config import RunConfig
from ..procinfo import ProcessRecord
from ..stop import request_stop
from .process_group import terminate_group


class SubprocessExecution:
    def __init__(self, run_dir: Path, proc: subprocess.Popen, record: ProcessRecord,
                 grace_s: float):
        self.run_dir, self.proc, self.record, self.grace_s = run_dir, proc, record, grace_s
        self._stopper: threading.Thread | None = None

    def poll(self) -> int | None:
        return self.proc.poll()

    def cancel(self, reason: str = "cancelled") -> None:
        request_stop(self.run_dir, reason)
        if self._stopper is None or not self._stopper.is_alive():
            self._stopper = threading.Thread(
                target=terminate_group, args=(self.record, self.grace_s),
                name=f"tunixrt-stop-{self.run_dir.name}", daemon=True,
            )
            self._stopper.start()


class SubprocessExecutor:
    name = "subprocess"

    def start(self, run_dir: Path, config: RunConfig, env: dict[str, str]) -> SubprocessExecution:
        run_dir = Path(run_dir)
        with open(run_dir / "stdout.log", "ab") as out, open(run_dir / "stderr.log", "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tunixrt_jupyter.worker", str(run_dir)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=run_dir,
                env={**os.environ, **env}, start_new_session=True, close_fds=True,
            )
        record = ProcessRecord.for_pid(proc.pid, self.name)
        record.save(run_dir)
        return SubprocessExecution(run_dir, proc, record, config.run.grace_s)
