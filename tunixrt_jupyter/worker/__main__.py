"""``python -m tunixrt_jupyter.worker RUN_DIR [--resume]``."""

from __future__ import annotations

import argparse
import os
import sys

from .main import run_worker

#: Set in the worker process, so anything the run spawns can tell it runs inside one.
IN_WORKER_ENV = "TUNIXRT_IN_WORKER"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tunixrt_jupyter.worker",
                                     description="Run one tunixrt run folder.")
    parser.add_argument("run_dir", help="the run folder (holds config.yaml and events.jsonl)")
    parser.add_argument(
        "--resume", action="store_true",
        help="take over a run left 'running' by a worker that died (e.g. SIGKILL or a "
             "machine crash) and continue from its latest checkpoint",
    )
    args = parser.parse_args(argv)
    os.environ[IN_WORKER_ENV] = "1"
    return run_worker(args.run_dir, resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
