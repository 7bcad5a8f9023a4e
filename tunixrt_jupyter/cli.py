"""tunixrt: launch, follow, stop and list Tunix runs from a shell.

Exit codes say what happened: 0 ok / completed, 1 failed, 2 bad input, 3 cancelled,
4 timeout, 5 lost, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .config import ConfigError, split_config_args

EXIT = {"completed": 0, "failed": 1, "cancelled": 3, "timeout": 4, "lost": 5}
BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tunixrt", description=__doc__.splitlines()[0])
    p.add_argument("--home", help="data folder (default $TUNIXRT_HOME or ./.tunixrt)")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="start a run: CONFIG.yaml and/or key=value overrides")
    r.add_argument("args", nargs="*", metavar="CONFIG|key=value")
    r.add_argument("--dry-run", action="store_true", help="validate and write the manifest only")
    r.add_argument("--wait", action="store_true", help="follow the run until it ends")
    r.add_argument("--quiet", action="store_true", help="no live progress while waiting")

    d = sub.add_parser("demo", help="a real tiny Tunix run with live progress, then the history")
    d.add_argument("args", nargs="*", metavar="key=value")

    ls = sub.add_parser("runs", help="list the history")
    ls.add_argument("--status", action="append", help="repeatable or comma-separated")
    ls.add_argument("--model", action="append")
    ls.add_argument("--dataset", action="append")
    ls.add_argument("--mode", action="append")
    ls.add_argument("--tag", action="append", dest="tags")
    ls.add_argument("--name", help="name substring")
    ls.add_argument("--since", help="YYYY-MM-DD or ISO time")
    ls.add_argument("--sort", default="-created_at", help="field, '-field' for descending")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--page", type=int, default=1)
    ls.add_argument("--json", action="store_true")

    s = sub.add_parser("show", help="one run's details")
    s.add_argument("run_id")
    s.add_argument("--json", action="store_true")

    lg = sub.add_parser("logs", help="a run's output")
    lg.add_argument("run_id")
    lg.add_argument("-n", type=int, default=50)
    lg.add_argument("--follow", "-f", action="store_true")

    c = sub.add_parser("cancel", help="cancel a pending or running run")
    c.add_argument("run_id")

    rs = sub.add_parser("resume", help="a new run starting from a run's latest checkpoint")
    rs.add_argument("run_id")
    rs.add_argument("args", nargs="*", metavar="key=value")
    rs.add_argument("--wait", action="store_true", help="follow the new run until it ends")
    rs.add_argument("--quiet", action="store_true", help="no live progress while waiting")

    sub.add_parser("reindex", help="rebuild the history catalog from the run folders")
    return p


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def cmd_run(ns: argparse.Namespace, *, demo: bool = False) -> int:
    from . import api
    from .config import load_config

    config, overrides = split_config_args(ns.args)
    cfg = load_config(config, overrides=overrides)
    if getattr(ns, "dry_run", False):
        cfg.run.mode = "dry-run"
    home = api.current_home(ns.home)
    from .env import auth_env

    run = api.launch(api.create_run(cfg, home), cfg, auth_env())
    print(f"started {run.id}  ({cfg.display_name}, {cfg.run.mode}, {cfg.run.executor})")
    if not (demo or ns.wait):
        sid = run.short_id
        print(f"follow it with: tunixrt logs {sid} -f   stop it: tunixrt cancel {sid}")
        return 0
    status = _follow_progress(run, quiet=getattr(ns, "quiet", False))
    if demo:
        print()
        cmd_runs(argparse.Namespace(home=ns.home, status=None, model=None, dataset=None,
                                    mode=None, tags=None, name=None, since=None,
                                    sort="-created_at", limit=10, page=1, json=False))
    return EXIT.get(status or "", 1)


def _follow_progress(run: Any, quiet: bool = False) -> str | None:
    """Print a one-line live progress view until the run ends; Ctrl-C cancels it."""
    from .live import RunTail
    from .progress import progress_line

    tail = RunTail(run.dir, logs=False)
    tty = sys.stdout.isatty()
    last = ""
    try:
        while True:
            tail.poll()
            line = progress_line(tail.state)
            if not quiet and line != last:
                print(("\r" + line.ljust(100)) if tty else line, end="" if tty else "\n",
                      flush=True)
                last = line
            if tail.state.terminal:
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\ncancelling...", flush=True)
        run.cancel()
        tail.poll()
    if tty and not quiet:
        print()
    status = tail.state.status
    if status == "failed" and tail.state.error:
        print(f"error: {tail.state.error}", file=sys.stderr)
    print(f"{run.id}: {status}")
    return status


def _fmt(v: Any, width: int | None = None) -> str:
    if v is None:
        s = "-"
    elif isinstance(v, float):
        s = f"{v:.4g}"
    else:
        s = str(v)
    return s


def _table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    cells = [[h for _, h in cols]] + [[_fmt(r.get(k)) for k, _ in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells
    )


def _started(row: dict) -> str | None:
    t = row.get("created_at")
    if t is None:
        return None
    if isinstance(t, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    return str(t)[:19]


def cmd_runs(ns: argparse.Namespace) -> int:
    from . import api

    limit = max(1, ns.limit)
    result = api.runs(home=ns.home, status=_split(ns.status), model=_split(ns.model),
                      dataset=_split(ns.dataset), mode=_split(ns.mode), tags=_split(ns.tags),
                      name=ns.name, since=ns.since, sort=ns.sort, limit=limit,
                      offset=(max(1, ns.page) - 1) * limit)
    if ns.json:
        import json

        print(json.dumps({"total": result.total, "runs": result.rows}, default=str, indent=2))
        return 0
    rows = [{**r, "started": _started(r), "steps": _steps(r)} for r in result.rows]
    cols = [("run_id", "ID"), ("name", "NAME"), ("status", "STATUS"), ("model", "MODEL"),
            ("dataset", "DATASET"), ("mode", "MODE"), ("steps", "STEPS"),
            ("final_loss", "LOSS"), ("best_eval_loss", "BEST EVAL"), ("started", "STARTED")]
    print(_table(rows, cols) if rows else "no runs yet: start one with `tunixrt demo`")
    print(f"{len(rows)} of {result.total} runs")
    return 0


def _steps(row: dict) -> str | None:
    if row.get("step") is None:
        return None
    return f"{row['step']}/{row['total_steps']}" if row.get("total_steps") else str(row["step"])


def cmd_show(ns: argparse.Namespace) -> int:
    from . import api
    from .progress import describe_run

    run = api.get(ns.run_id, home=ns.home)
    if ns.json:
        import dataclasses
        import json

        print(json.dumps({"id": run.id, "dir": str(run.dir), "config": run.config.to_dict(),
                          "state": dataclasses.asdict(run.state())}, default=str, indent=2))
    else:
        print(describe_run(run))
    return 0


def cmd_logs(ns: argparse.Namespace) -> int:
    from . import api
    from .live import RunTail

    run = api.get(ns.run_id, home=ns.home)
    for line in run.logs(ns.n):
        print(line)
    if not ns.follow:
        return 0
    tail = RunTail(run.dir)
    tail.skip_existing_logs()
    try:
        while True:
            update = tail.poll()
            for stream, line in update.logs:
                print(f"[stderr] {line}" if stream == "stderr" else line, flush=True)
            if tail.state.terminal and not update:
                print(f"-- {run.id}: {tail.state.status}")
                return EXIT.get(tail.state.status or "", 1)
            if not update:
                time.sleep(0.2)
    except KeyboardInterrupt:
        return 130


def cmd_cancel(ns: argparse.Namespace) -> int:
    from . import api

    run = api.get(ns.run_id, home=ns.home)
    before = run.status
    status = run.cancel()
    print(f"{run.id}: {before} -> {status}")
    return 0 if status in ("cancelled",) or before in EXIT else 1


def cmd_resume(ns: argparse.Namespace) -> int:
    from . import api
    from .config import parse_overrides

    run = api.resume(ns.run_id, home=api.current_home(ns.home), **parse_overrides(ns.args))
    print(f"started {run.id}  (from {ns.run_id})")
    if not ns.wait:
        return 0
    return EXIT.get(_follow_progress(run, quiet=ns.quiet) or "", 1)


def cmd_reindex(ns: argparse.Namespace) -> int:
    from . import api
    from .store.catalog import Catalog

    home = api.current_home(ns.home)
    Catalog(home.root).reindex()
    result = api.runs(home=home, limit=1)
    print(f"reindexed {result.total} runs from {home.runs_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    handlers = {"run": cmd_run, "runs": cmd_runs, "show": cmd_show, "logs": cmd_logs,
                "cancel": cmd_cancel, "reindex": cmd_reindex, "resume": cmd_resume}
    try:
        if ns.cmd == "demo":
            ns.wait, ns.dry_run, ns.quiet = True, False, False
            ns.args = [a for a in ns.args]
            return cmd_run(ns, demo=True)
        return handlers[ns.cmd](ns)
    except ConfigError as exc:
        print(f"tunixrt: {exc}", file=sys.stderr)
        return BAD_INPUT
    except (KeyError, ValueError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        print(f"tunixrt: {msg}", file=sys.stderr)
        return BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
