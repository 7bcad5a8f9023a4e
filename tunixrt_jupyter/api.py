"""The Python API: ``run``, ``runs``, ``get``.

``run()`` writes the run folder (resolved ``config.yaml`` + a ``pending`` event) before
anything starts, so a run exists, and can be listed or cancelled, from the moment the
call returns; the executor then starts the work and this process's supervisor watches it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import RunConfig, expand_override_keys, load_config
from .events import append_event
from .handles import Run, RunList
from .home import Home, new_run_id

__all__ = ["run", "runs", "get", "resume", "create_run", "launch", "build_config", "current_home"]

_session_defaults: dict[str, Any] = {}


def session_defaults() -> dict[str, Any]:
    """Defaults set for this process (``%tunix_config``): home, executor, max_concurrent..."""
    return _session_defaults


def current_home(home: str | os.PathLike | Home | None = None) -> Home:
    if isinstance(home, Home):
        return home
    return Home.resolve(home or _session_defaults.get("home"))


def build_config(config: Any = None, *, dry_run: bool = False,
                 overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Config + session defaults + overrides -> one validated RunConfig."""
    merged: dict[str, Any] = {}
    for key in ("executor", "max_concurrent", "platform", "timeout_s"):
        if key in _session_defaults:
            merged[f"run.{key}"] = _session_defaults[key]
    merged.update(expand_override_keys(dict(overrides or {})))
    if dry_run:
        merged["run.mode"] = "dry-run"
    return load_config(config, overrides=merged)


def resolve_resume_from(cfg: RunConfig, home: Home) -> None:
    """Turn ``training.resume_from`` (a run id, run folder or checkpoints folder) into the
    absolute checkpoints folder the worker copies from, or a ConfigError saying why not."""
    from .config import ConfigError

    ref = cfg.training.resume_from
    if not ref:
        return
    path = Path(ref).expanduser()
    if not path.is_dir():
        try:
            path = home.find_run(ref)
        except KeyError as exc:
            raise ConfigError([("training.resume_from", f"{exc.args[0]}; give a run id or a "
                                                        "checkpoints folder")]) from None
    if (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    if not any(p.is_dir() and p.name.isdigit() for p in path.iterdir()):
        raise ConfigError([("training.resume_from", f"{str(path)!r} holds no checkpoint; "
                            "resume from a run that saved one (checkpoint_every_n_steps)")])
    cfg.training.resume_from = str(path.resolve())


def create_run(cfg: RunConfig, home: Home) -> Run:
    """Write the run folder: resolved config and the ``pending`` event."""
    home.ensure()
    resolve_resume_from(cfg, home)
    run_id = new_run_id()
    run_dir = home.run_dir(run_id)
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    append_event(run_dir, "status", status="pending", name=cfg.display_name)
    if cfg.run.mode != "dry-run":  # dry runs take no slot
        from .slots import enqueue

        enqueue(home.slots_dir, run_id)
    return Run(run_dir, home)


def launch(run: Run, cfg: RunConfig, env: Mapping[str, str] | None = None) -> Run:
    """Start ``run`` with its executor and hand it to this process's supervisor."""
    from .executors import get_executor
    from .supervisor import get_supervisor

    executor = get_executor(cfg.run.executor)
    try:
        execution = executor.start(run.dir, cfg, dict(env or {}))
    except Exception as exc:
        from .lifecycle import transition

        transition(run.dir, "failed", error=f"could not start the {cfg.run.executor} executor: "
                                            f"{exc}")
        raise
    get_supervisor(run.home).track(run.dir, execution, cfg)
    return run


def run(config: Any = None, *, dry_run: bool = False, wait: bool = False,
        home: str | os.PathLike | Home | None = None, env: Mapping[str, str] | None = None,
        **overrides: Any) -> Run:
    """Start a Tunix run in the background and return its :class:`Run` at once.

    ``config`` is a YAML path or text, a dict or a RunConfig; ``overrides`` are field
    names (``max_steps=20``) or dotted keys (``**{"training.learning_rate": 3e-4}``).
    ``wait=True`` blocks until the run ends. ``env`` adds environment variables for the
    run's process only (never written to disk: use it for tokens).
    """
    cfg = build_config(config, dry_run=dry_run, overrides=overrides)
    from .env import auth_env

    r = launch(create_run(cfg, current_home(home)), cfg, {**auth_env(), **(env or {})})
    if wait:
        r.wait()
    return r


def _catalog(home: Home):
    from .store.catalog import Catalog

    return Catalog(home.root)


def sync(home: Home) -> None:
    """Catch the catalog up with the run folders and mark runs whose process is gone."""
    from .control import reconcile_lost
    from .supervisor import get_supervisor

    if not home.runs_dir.is_dir():
        return
    cat = _catalog(home)
    cat.ingest()
    active = [r["run_id"] for r in cat.list_runs(status=["pending", "running"], limit=10_000)[0]]
    if reconcile_lost(home, active, skip=get_supervisor(home).tracked_ids()):
        cat.ingest()


def runs(*, home: str | os.PathLike | Home | None = None, limit: int = 20, offset: int = 0,
         sort: str = "-created_at", **filters: Any) -> RunList:
    """Query the history: filters ``status``, ``model``, ``dataset``, ``mode``, ``tags``,
    ``name`` (substring), ``since``/``until``; lists mean OR. Returns a :class:`RunList`."""
    h = current_home(home)
    if not h.runs_dir.is_dir():
        return RunList([], 0, h, filters)
    sync(h)
    rows, total = _catalog(h).list_runs(sort=sort, limit=limit, offset=offset, **filters)
    return RunList(rows, total, h, {**filters, "sort": sort, "limit": limit, "offset": offset})


def resume(source: Run | str, *, wait: bool = False,
           home: str | os.PathLike | Home | None = None, **overrides: Any) -> Run:
    """A new run that starts from ``source``'s latest checkpoint, with its config + overrides.

    The old run and its history stay as they were; raise ``max_steps`` to train further.
    """
    old = source if isinstance(source, Run) else get(source, home=home)
    overrides.setdefault("name", f"{old.name}-resumed")
    return run(old.config, wait=wait, home=old.home,
               **{"training.resume_from": str(old.dir), **overrides})


def get(run_id: str, *, home: str | os.PathLike | Home | None = None) -> Run:
    """A run by id, or by a unique prefix or its short id."""
    h = current_home(home)
    return Run(h.find_run(run_id), h)


def run_dir_of(run: Run | str | Path, home: Home | None = None) -> Path:
    if isinstance(run, Run):
        return run.dir
    if isinstance(run, Path):
        return run
    return current_home(home).find_run(run)
