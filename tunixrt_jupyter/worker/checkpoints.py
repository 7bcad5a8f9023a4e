"""Announce Tunix's checkpoints as events once they are really on disk.

PeftTrainer saves through its ``checkpoint_manager`` (orbax, asynchronous: ``save()``
returns while the files are still being written). This wrapper replaces the trainer's
manager after construction (the restore in ``PeftTrainer.__init__`` has already run) and
emits ``checkpoint`` + ``artifact`` events only once the step's folder has its final name:
orbax writes into a temporary folder and renames it when the save is complete, so a reader
never sees an event for a half-written checkpoint. (Asking orbax "is a save in progress?"
does not work: with frequent saves one is nearly always in flight.) The check is one
``stat`` per step, and only while a save is pending.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from ..events import EventWriter


class CheckpointEvents:
    """Delegates to Tunix's CheckpointManager; reports finished saves."""

    def __init__(self, inner: Any, writer: EventWriter, root: Path):
        self._inner = inner
        self._writer = writer
        self._root = root
        self._pending: list[int] = []

    def save(self, step: int, *args: Any, **kwargs: Any) -> bool:
        saved = bool(self._inner.save(step, *args, **kwargs))
        if saved:
            self._pending.append(int(step))
        self._report_finished(wait=False)
        return saved

    def close(self) -> None:
        self._inner.close()  # waits for any save in flight
        self._report_finished(wait=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _report_finished(self, *, wait: bool) -> None:
        """Report pending saves whose folder is final (all of them once orbax has closed)."""
        while self._pending:
            step = self._pending[0]
            path = self._root / str(step)
            if not wait and not path.is_dir():
                return  # saves finish in order: later ones are not done either
            self._pending.pop(0)
            self._writer.emit("checkpoint", step=step, path=str(path))
            self._writer.emit("artifact", name=f"checkpoint-{step}", path=str(path),
                              kind="checkpoint", bytes=folder_bytes(path))


def folder_bytes(path: Path) -> int | None:
    if not path.is_dir():
        return None
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                continue
    return total


def latest_checkpoint_step(root: Path) -> int | None:
    """Highest finished step folder under ``root`` (orbax names them by step number)."""
    try:
        steps = [int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit()]
    except FileNotFoundError:
        return None
    return max(steps) if steps else None


def set_aside(root: Path) -> Path | None:
    """Move old checkpoints away (``training.resume: false``) instead of deleting them."""
    if latest_checkpoint_step(root) is None:
        return None
    target = root.with_name(f"{root.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.move(str(root), str(target))
    return target


def latest_step_dir(root: Path) -> Path | None:
    """The newest finished orbax step folder under ``root`` (named by its step number)."""
    try:
        steps = [p for p in root.iterdir() if p.is_dir() and p.name.isdigit()]
    except FileNotFoundError:
        return None
    return max(steps, key=lambda p: int(p.name)) if steps else None


def seed_from(source: Path, root: Path) -> Path | None:
    """Start this run from another run's latest checkpoint (``training.resume_from``).

    The step folder is hard-linked when the filesystem allows (real checkpoints are
    gigabytes), copied otherwise; the old run's folder is never modified. Tunix then
    restores it like any checkpoint of this run. Skipped when this run has its own.
    """
    if latest_step_dir(root) is not None:
        return None
    src = latest_step_dir(source)
    if src is None:
        return None
    root.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(src, root / src.name, copy_function=os.link)
    except OSError:
        shutil.rmtree(root / src.name, ignore_errors=True)
        shutil.copytree(src, root / src.name)
    return root / src.name
