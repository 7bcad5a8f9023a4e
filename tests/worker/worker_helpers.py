"""Helpers for the worker tests: write a run folder as the launcher does, start the real
worker in its own session (output to files), and read its events back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunixrt_jupyter.config import load_config
from tunixrt_jupyter.events import append_event, iter_events
from tunixrt_jupyter.home import Home, new_run_id
from tunixrt_jupyter.procinfo import ProcessRecord

ROOT = Path(__file__).resolve().parents[2]
#: One JAX compilation cache for every worker the tests start (each test has its own home,
#: so the worker's default ``<home>/cache/jax`` would start cold every time).
SHARED_JAX_CACHE = Path(tempfile.gettempdir()) / f"tunixrt-tests-jax-cache-{os.getuid()}"

#: Small and quick: the tiny model, short sequences, frequent eval and checkpoints.
FAST = {
    "training.max_steps": 12,
    "training.batch_size": 4,
    "training.eval_every_n_steps": 6,
    "training.checkpoint_every_n_steps": 6,
    "dataset.max_seq_length": 32,
    "dataset.eval_fraction": 0.05,
}


def make_run(home: Home, overrides: Mapping[str, Any] | None = None, *,
             fast: bool = True) -> Path:
    """A run folder exactly as the launcher leaves it: config.yaml + a ``pending`` event."""
    cfg = load_config(None, overrides={**(FAST if fast else {}), **(overrides or {})})
    run_dir = home.ensure().run_dir(new_run_id())
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    append_event(run_dir, "status", status="pending")
    return run_dir


def rewrite_config(run_dir: Path, overrides: Mapping[str, Any]) -> None:
    cfg = load_config(run_dir / "config.yaml", overrides=dict(overrides))
    (run_dir / "config.yaml").write_text(cfg.to_yaml())


def start_worker(run_dir: Path, *args: str, env: Mapping[str, str] | None = None,
                 python_args: tuple[str, ...] = ()) -> subprocess.Popen:
    """``python -m tunixrt_jupyter.worker RUN_DIR`` in a new session, output to files.

    Also writes ``process.json`` as the subprocess executor does.
    """
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1",
                "JAX_COMPILATION_CACHE_DIR": str(SHARED_JAX_CACHE), **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (full_env.get("PYTHONPATH", ""), str(ROOT)) if p)
    with open(run_dir / "stdout.log", "ab") as out, open(run_dir / "stderr.log", "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, *python_args, "-m", "tunixrt_jupyter.worker", str(run_dir), *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=run_dir, env=full_env,
            start_new_session=True,
        )
    ProcessRecord.for_pid(proc.pid, "subprocess").save(run_dir)
    return proc


def finish(proc: subprocess.Popen, run_dir: Path, timeout: float = 300) -> int:
    """Wait for the worker to exit (deadline, not a sleep); show its stderr on a hang."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(
            f"worker did not exit in {timeout}s:\n{stderr_tail(run_dir)}") from None


def stderr_tail(run_dir: Path, n: int = 40) -> str:
    try:
        return "\n".join((run_dir / "stderr.log").read_text().splitlines()[-n:])
    except FileNotFoundError:
        return ""


def events(run_dir: Path, type_: str | None = None) -> list[dict]:
    return [e for e in iter_events(run_dir) if type_ is None or e.get("type") == type_]


def statuses(run_dir: Path) -> list[str]:
    return [e["status"] for e in events(run_dir, "status")]


def last_status_event(run_dir: Path) -> dict:
    return events(run_dir, "status")[-1]


def metric_values(run_dir: Path, name: str) -> list[float]:
    return [float(e["value"]) for e in events(run_dir, "metric") if e["name"] == name]


def progress_at_least(run_dir: Path, step: int) -> bool:
    return any((e.get("step") or 0) >= step for e in events(run_dir, "progress"))


def info(run_dir: Path, key: str) -> list[Any]:
    return [e.get("value") for e in events(run_dir, "info") if e.get("key") == key]


def describe(run_dir: Path) -> str:
    """Failure context for asserts: statuses, errors and the end of stderr."""
    errors = [e.get("message") for e in events(run_dir, "error")]
    return f"statuses={statuses(run_dir)} errors={errors}\n{stderr_tail(run_dir)}"


def import_blocker(folder: Path, blocked: tuple[str, ...] = ("tunix", "jax", "jaxlib")) -> Path:
    """A ``sitecustomize`` that makes ``blocked`` unimportable and logs every attempt.

    Put ``folder`` first on PYTHONPATH: the child then behaves like an environment where
    Tunix/JAX are not installed, and ``folder/attempts.txt`` lists what it tried to import.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import sys

        BLOCKED = {blocked!r}
        LOG = {str(folder / "attempts.txt")!r}

        class _Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    with open(LOG, "a") as f:
                        f.write(name + "\\n")
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, _Blocker())
    """))
    return folder


def blocked_attempts(folder: Path) -> list[str]:
    try:
        return (folder / "attempts.txt").read_text().split()
    except FileNotFoundError:
        return []
