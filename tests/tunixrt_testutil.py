"""Test helpers shared by every test folder (a unique module name, unlike ``conftest``)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import pytest


def wait_for(predicate: Callable[[], object], timeout: float = 120.0, interval: float = 0.05,
             what: str = "condition") -> object:
    """Poll ``predicate`` until truthy; fail the test with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def tunix_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tunix") is not None


needs_tunix = pytest.mark.skipif(not tunix_available(),
                                 reason='needs tunix: pip install "tunixrt-jupyter[tunix]"')

PYTHON = sys.executable
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


class IopubKernel:
    """A real kernel (jupyter_client) plus a thread collecting every IOPub message.

    Shared by the magics and widget kernel tests; subclasses add their own helpers.
    """

    def __init__(self, kernel_name: str, cwd, env: dict[str, str]):
        import threading

        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name=kernel_name)
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self._msgs: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        import queue

        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            except Exception:  # channels closed at shutdown
                return
            with self._lock:
                self._msgs.append(msg)

    def messages(self) -> list[dict]:
        with self._lock:
            return list(self._msgs)

    def run(self, code: str, timeout: float = 60.0) -> tuple[dict, list[dict]]:
        """Execute ``code``; return its execute_reply content and its IOPub messages."""
        msg_id = self.kc.execute(code)
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)

        def own() -> list[dict]:
            return [m for m in self.messages() if m["parent_header"].get("msg_id") == msg_id]

        wait_for(lambda: any(m["msg_type"] == "status"
                             and m["content"]["execution_state"] == "idle" for m in own()),
                 timeout, what="the cell to finish")
        return reply["content"], own()

    def send_custom(self, comm_id: str, content: dict) -> str:
        """What a widget view's ``model.send(content)`` puts on the shell channel."""
        msg = self.kc.session.msg("comm_msg", {
            "comm_id": comm_id, "data": {"method": "custom", "content": content}})
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def comm_msgs(self, comm_id: str) -> list[dict]:
        return [m for m in self.messages()
                if m["msg_type"] == "comm_msg" and m["content"].get("comm_id") == comm_id]

    def updates(self, comm_id: str) -> list[dict]:
        """Synced trait changes (``method: update``), in arrival order."""
        return [m["content"]["data"]["state"] for m in self.comm_msgs(comm_id)
                if m["content"]["data"].get("method") == "update"]

    def close(self) -> None:
        self._stop.set()
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
