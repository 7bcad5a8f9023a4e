"""Talking to the kernel a ``--keep-kernel`` code run left running.

``attach(run)`` returns a connected ``BlockingKernelClient``; ``%tunix_attach ID`` prints how
to reach the kernel, and ``%%tunix_attach ID`` runs its cell there, showing the output here
(e.g. inspect the trained model the cell built). ``shutdown_kept_kernel(run)`` ends it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONNECTION_FILE = "kernel.json"  # executors.kernel writes the connection file here


def _connection_file(run: Any) -> Path:
    path = Path(run.dir) / CONNECTION_FILE
    if not path.is_file():
        raise ValueError(f"run {run.id} has no kernel to attach to: start the cell with "
                         "%%tunix_run --code --keep-kernel (and the kernel ends with the "
                         "notebook that started it)")
    return path


def attach(run: Any, timeout: float = 30.0) -> Any:
    """A started, ready ``BlockingKernelClient`` on the run's kept kernel."""
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(_connection_file(run)))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
    except RuntimeError as exc:
        client.stop_channels()
        raise ValueError(f"run {run.id}'s kernel does not answer ({exc}); it has probably "
                         "ended") from None
    return client


def run_in_kept_kernel(run: Any, code: str, timeout: float | None = None) -> dict:
    """Execute ``code`` in the kept kernel; its output appears where this is called."""
    client = attach(run)
    try:
        return client.execute_interactive(code, timeout=timeout)
    finally:
        client.stop_channels()


def shutdown_kept_kernel(run: Any) -> bool:
    """End a kept kernel; True if one was running."""
    from .executors.kernel import _KEPT

    km = _KEPT.pop(run.id, None)
    if km is not None:
        try:
            if km.is_alive():
                km.shutdown_kernel(now=True)
                return True
        finally:
            km.cleanup_resources()
        return False
    try:
        client = attach(run, timeout=5)
    except ValueError:
        return False
    try:
        client.shutdown()
    finally:
        client.stop_channels()
    return True


def register_attach_magic(shell: Any) -> None:
    """Add ``%tunix_attach`` / ``%%tunix_attach`` to ``shell`` (once)."""
    register = getattr(shell, "register_magic_function", None)
    if register is None or getattr(shell, "_tunixrt_attach_magic", False):
        return

    def tunix_attach(line: str = "", cell: str | None = None) -> Any:
        """``%tunix_attach ID``: how to reach a kept kernel; ``%%tunix_attach ID``: run the
        cell in it."""
        from . import api
        from .magics import show_error

        try:
            run = api.get(line.strip())
            if cell is None:
                path = _connection_file(run)
                print(f"run {run.id} kernel: jupyter console --existing {path}\n"
                      f"or: %%tunix_attach {run.id} (runs a cell there)")
                return None
            run_in_kept_kernel(run, cell)
        except (KeyError, ValueError) as exc:
            show_error(exc.args[0] if exc.args else str(exc))
        return None

    register(tunix_attach, magic_kind="line_cell", magic_name="tunix_attach")
    shell._tunixrt_attach_magic = True
