"""``run_worker(run_dir)``: the whole child-side life of one run.

Order matters and is deliberate:

1. read the config and install the stop handlers (a cancel may arrive at any time);
2. wait for a concurrency slot while ``pending`` (a cancel while waiting ends the run
   without ever importing JAX); dry-runs take no slot;
3. check the dataset before importing anything heavy, so a typo fails in well under a
   second with a message naming the field;
4. set ``JAX_PLATFORMS``, import JAX/Tunix (missing -> one clear pip hint), verify the
   backend JAX really chose, then go ``running`` and start the timeout watchdog;
5. train; the final status is ``completed``, or the stop reason (``cancelled``/``timeout``)
   when a stop cut training short, or ``failed`` with an ``error`` event for any exception.

Statuses change only through ``lifecycle.transition``; a status another process already
made terminal (a supervisor's cancel) is respected, never overwritten.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any

from ..config import load_config
from ..events import EventWriter, current_status
from ..lifecycle import is_terminal, transition
from ..procinfo import ProcessRecord
from ..slots import acquire_slot
from ..stop import stop_reason
from .checkpoints import latest_checkpoint_step
from .plan import CHECKPOINTS_DIR
from .signals import (
    RunStopped,
    StopFlag,
    TimeoutWatchdog,
    check_stop,
    install_signal_handlers,
)

TUNIX_MISSING = 'Tunix is not installed in this environment: pip install "tunixrt-jupyter[tunix]"'


class TunixMissing(RuntimeError):
    """JAX/Tunix cannot be imported in the worker's environment."""


def run_worker(run_dir: str | os.PathLike, *, resume: bool = False,
               stop: StopFlag | None = None) -> int:
    """Run ``run_dir`` to a final status; returns the process exit code.

    ``stop`` lets an in-process caller (the inline executor) own the stop flag; the worker
    then installs no signal handlers and never ends the process. Otherwise SIGTERM/SIGINT
    set the flag. ``resume`` allows taking over a run left ``running`` by a worker
    that died; it then continues from the latest checkpoint.
    """
    run_dir = Path(run_dir).resolve()
    if stop is None:
        flag = StopFlag()
        install_signal_handlers(flag)
    else:
        flag = stop
        flag.in_process = True  # a caller's thread: never end its process
    writer = EventWriter(run_dir)
    try:
        return _run(run_dir, resume, flag, writer)
    except RunStopped as stopped:
        step = stopped.step or latest_checkpoint_step(run_dir / CHECKPOINTS_DIR) or 0
        transition(run_dir, stop_reason(run_dir) or "cancelled", step=step)
        return 0
    except Exception as exc:  # every failure becomes an error event + failed status
        return _fail(run_dir, writer, exc)
    finally:
        writer.close()


def _run(run_dir: Path, resume: bool, flag: StopFlag, writer: EventWriter) -> int:
    status = current_status(run_dir)
    if is_terminal(status):
        print(f"tunixrt: run {run_dir.name} is already {status}; nothing to do", file=sys.stderr)
        return 0
    if status == "running" and not _may_take_over(run_dir, resume):
        return 2
    cfg = load_config(run_dir / "config.yaml")
    if cfg.run.mode == "dry-run":
        from .dryrun import run_dry

        transition(run_dir, "running", platform=None, pid=os.getpid())
        run_dry(cfg, run_dir, writer)
        transition(run_dir, "completed")
        return 0

    home = run_dir.parent.parent
    slot = acquire_slot(home / "slots", run_dir.name, cfg.run.max_concurrent, should_stop=flag)
    if slot is None:
        transition(run_dir, stop_reason(run_dir) or "cancelled")
        return 0
    try:
        return _train(cfg, run_dir, flag, writer)
    finally:
        slot.release()


def _train(cfg: Any, run_dir: Path, flag: StopFlag, writer: EventWriter) -> int:
    from ..recipes.datasets import load_records
    from .platform import configure_platform, verify_backend

    records = load_records(cfg.dataset)
    configure_platform(cfg.run.platform)
    try:
        from . import training
    except ImportError as exc:
        raise TunixMissing(f"{TUNIX_MISSING} ({exc})") from exc
    info = verify_backend(cfg.run.platform)
    check_stop(flag)  # stopped during start-up: end as pending -> cancelled, never running
    if not transition(run_dir, "running", platform=info["platform"], pid=os.getpid()):
        now = current_status(run_dir)
        if now != "running":
            print(f"tunixrt: run {run_dir.name} became {now} before it started", file=sys.stderr)
            return 0
        writer.emit("info", key="takeover", value=os.getpid(), platform=info["platform"],
                    message="continuing a run whose previous worker died")
    for key in ("platform", "device_kind", "device_count"):
        writer.emit("info", key=key, value=info[key])
    watchdog = None
    if cfg.run.timeout_s:
        # an in-process flag (inline executor) disables the watchdog's hard exit: the
        # notebook's own kernel is never ended
        watchdog = TimeoutWatchdog(run_dir, flag, cfg.run.timeout_s, cfg.run.grace_s).start()
    try:
        outcome = training.run_training(cfg, run_dir, records, flag, writer, info)
    finally:
        if watchdog is not None:
            watchdog.finish()
    status = (stop_reason(run_dir) or "cancelled") if outcome.stopped else "completed"
    outcome.manifest["result"]["status"] = status
    from .manifest import write_manifest

    write_manifest(run_dir, cfg, writer, announce=False, **outcome.manifest)
    transition(run_dir, status, step=outcome.final_step)
    return 0


def _may_take_over(run_dir: Path, resume: bool) -> bool:
    """A ``running`` folder is someone else's unless its worker is gone and we may resume."""
    record = ProcessRecord.load(run_dir)
    alive = record is not None and record.pid != os.getpid() and record.is_alive()
    if resume and not alive:
        return True
    why = (f"its worker (pid {record.pid}) is still alive" if alive and record
           else "pass --resume to take over a run whose worker died")
    print(f"tunixrt: run {run_dir.name} is already running: {why}", file=sys.stderr)
    return False


def _fail(run_dir: Path, writer: EventWriter, exc: BaseException) -> int:
    message = str(exc) if _is_user_error(exc) else f"{type(exc).__name__}: {exc}"
    writer.emit("error", message=message, traceback=traceback.format_exc())
    print(f"tunixrt: run failed: {message}", file=sys.stderr)
    transition(run_dir, "failed", error=message)
    return 1


def _is_user_error(exc: BaseException) -> bool:
    """Errors whose message already says what to fix (no exception class name needed)."""
    from ..config import ConfigError
    from ..recipes.datasets import DatasetError
    from ..recipes.models import ModelError
    from ..recipes.tokenizers import TokenizerError
    from .platform import PlatformError

    return isinstance(exc, (ConfigError, DatasetError, ModelError, TokenizerError,
                            PlatformError, TunixMissing))
