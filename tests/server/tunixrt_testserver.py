"""Test helpers: a real Jupyter server with the tunixrt extension, hand-written run folders.

The server runs as a subprocess on a free loopback port with a token, in its own session,
with private Jupyter config/data/runtime dirs (the user's ~/.jupyter is never read) and
``TUNIXRT_HOME`` pointing at a temp home outside its root dir.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from tunixrt_testutil import wait_for  # noqa: F401 (re-exported)

from tunixrt_jupyter.config import load_config
from tunixrt_jupyter.events import append_event
from tunixrt_jupyter.procinfo import ProcessRecord

EXT_ARG = "--ServerApp.jpserver_extensions=tunixrt_jupyter.server=True"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reply:
    def __init__(self, status: int, body: bytes, headers):
        self.status, self.body, self.headers = status, body, headers

    @property
    def json(self):
        return json.loads(self.body)


class Server:
    """``jupyter server`` in a subprocess; :meth:`request` speaks real HTTP to it."""

    def __init__(self, tmp: Path, *, app: str = "jupyter_server", extra: tuple = ()):
        self.tmp = tmp
        self.root = tmp / "root"
        self.home = tmp / "home"  # $TUNIXRT_HOME, deliberately outside the root dir
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.app, self.extra = app, extra
        self.proc: subprocess.Popen | None = None
        self.log_path = tmp / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        dirs = {k: self.tmp / k for k in ("config", "data", "runtime")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "TUNIXRT_HOME": str(self.home), "PYTHONUNBUFFERED": "1",
                "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
                "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "JUPYTER_PLATFORM_DIRS": "1"}

    def start(self, timeout: float = 60.0) -> Server:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.home / "runs").mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", self.app, "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--port-retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--ServerApp.allow_root=True", EXT_ARG, *self.extra]
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env(), cwd=self.root,
                                     start_new_session=True)
        log.close()

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_tail()}")
            try:
                return self.request("GET", "/api/status", timeout=2).status == 200
            except OSError:
                return False

        wait_for(up, timeout=timeout, interval=0.1, what="the jupyter server to answer")
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.request("POST", "/api/shutdown", timeout=3)
        except OSError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)  # only the process we started
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def request(self, method: str, path: str, *, params: dict | None = None,
                token: bool = True, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 10.0) -> Reply:
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        data = body if body is not None else (b"" if method == "POST" else None)
        req = urllib.request.Request(url, method=method, data=data)
        if token:
            req.add_header("Authorization", f"token {self.token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Reply(r.status, r.read(), r.headers)
        except urllib.error.HTTPError as e:
            return Reply(e.code, e.read(), e.headers)

    def api(self, method: str, path: str, expect: int | tuple = (200,), **kw):
        reply = self.request(method, "/tunixrt/api/" + path.lstrip("/"), **kw)
        expect = (expect,) if isinstance(expect, int) else expect
        assert reply.status in expect, (reply.status, reply.body[:500], self.log_tail(20))
        return reply.json


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("jupyter")).start()
    yield srv
    srv.stop()


# ----------------------------------------------------------------------------------------
# run folders written by hand, as the engine writes them

_seq = [0]


def run_id(prefix: str = "20250101-0000") -> str:
    _seq[0] += 1
    return f"{prefix}{_seq[0] % 100:02d}-{secrets.token_hex(3)}"


def make_run(home_root: Path, *, name: str, status: str = "completed", steps: int = 0,
             total: int | None = 10, losses: list[float] | None = None, grace_s: float = 2.0,
             rid: str | None = None, logs: list[str] | None = None) -> Path:
    """A run folder: config.yaml, a status history ending at ``status``, progress, losses."""
    run_dir = home_root / "runs" / (rid or run_id())
    run_dir.mkdir(parents=True)
    cfg = load_config({"name": name, "training": {"max_steps": total or 10},
                       "run": {"grace_s": grace_s}})
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    append_event(run_dir, "status", status="pending", name=name)
    if status == "pending":
        return run_dir
    append_event(run_dir, "status", status="running", platform="cpu")
    for i, loss in enumerate(losses or [], start=1):
        append_event(run_dir, "metric", name="train/loss", value=loss, step=i)
    if steps:
        append_event(run_dir, "progress", step=steps, total=total)
    if logs:
        (run_dir / "stdout.log").write_text("".join(line + "\n" for line in logs))
    if status != "running":
        append_event(run_dir, "status", status=status)
    return run_dir


SLEEPER = textwrap.dedent("""
    import signal, subprocess, sys, time
    if sys.argv[1] == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("ready", kid.pid, flush=True)
    time.sleep(600)
""")


class LiveRun:
    """A run folder whose recorded process is a real process group that sleeps."""

    def __init__(self, run_dir: Path, stubborn: bool = False):
        self.dir = run_dir
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SLEEPER, "stubborn" if stubborn else "plain"],
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.proc.stdout.readline()  # the group is complete once this arrives
        assert line.startswith("ready"), line
        self.record = ProcessRecord.for_pid(self.proc.pid, "subprocess")
        self.record.save(run_dir)

    def gone(self) -> bool:
        """True once the whole group is gone (zombies aside); reaps our direct child."""
        self.proc.poll()
        return self.proc.returncode is not None and not self.record.group_pids()

    def kill(self) -> None:
        if self.proc.poll() is None or self.record.group_pids():
            try:
                os.killpg(self.record.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        self.proc.stdout.close()


def live_run(home_root: Path, name: str, *, stubborn: bool = False, **kw) -> LiveRun:
    run_dir = make_run(home_root, name=name, status="running", **kw)
    return LiveRun(run_dir, stubborn=stubborn)


def now() -> float:
    return time.monotonic()
