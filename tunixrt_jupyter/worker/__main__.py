"""``python -m tunixrt_jupyter.worker RUN_DIR [--resume]``."""

from __future__ import annotations

import argparse
import sys

from .main import run_worker


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
    return run_worker(args.run_dir, resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
