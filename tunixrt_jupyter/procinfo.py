"""Which process runs a run, recorded so that any process can tell if it is still alive.

A pid alone is not proof: pids are reused. ``process.json`` stores pid, process group and
the process start time (from psutil); a run's process is alive only when a process with
that pid exists *and* started at that time.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

PROCESS_FILE = "process.json"


@dataclass
class ProcessRecord:
    pid: int
    pgid: int
    create_time: float
    host: str
    executor: str

    @classmethod
    def for_pid(cls, pid: int, executor: str) -> ProcessRecord:
        proc = psutil.Process(pid)
        return cls(pid=pid, pgid=os.getpgid(pid), create_time=proc.create_time(),
                   host=socket.gethostname(), executor=executor)

    def save(self, run_dir: str | os.PathLike) -> None:
        path = Path(run_dir) / PROCESS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> ProcessRecord | None:
        try:
            data = json.loads((Path(run_dir) / PROCESS_FILE).read_text())
            return cls(**data)
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def is_alive(self) -> bool:
        """True while the recorded process exists (same pid *and* start time).

        A zombie still counts while a live parent (its supervisor) has yet to reap it and
        report the exit code; one orphaned to init is gone.
        """
        if self.host != socket.gethostname():
            return True  # another machine's process: never declare it gone from here
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 0.01:
                return False
            if proc.status() == psutil.STATUS_ZOMBIE:
                return proc.ppid() not in (0, 1) and psutil.pid_exists(proc.ppid())
            return True
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def group_pids(self) -> list[int]:
        """Live pids still in the recorded process group."""
        out = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(proc.pid) == self.pgid and proc.status() != psutil.STATUS_ZOMBIE:
                    out.append(proc.pid)
            except (ProcessLookupError, psutil.Error, OSError):
                continue
        return out
