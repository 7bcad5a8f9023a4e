"""Re-execute the example notebooks in place, so the outputs they store are real.

    .venv/bin/python examples/execute_notebooks.py               # every notebook
    .venv/bin/python examples/execute_notebooks.py 03_*.ipynb    # some of them

The notebooks are executed the way nbval executes them in CI: one fresh kernel of this
Python per notebook, in ``examples/``, as a batch run (so ``%tunix_run`` waits for its
run). Cells marked ``# NBVAL_SKIP`` are not executed and keep no output (they need a
network or a TPU). No widget state is stored: the widget outputs keep their text/plain
and text/html snapshots, which are what a reader without a kernel sees.

Every notebook keeps its runs in a fresh temporary ``TUNIXRT_HOME`` (its first cell sets
it); compiled XLA programs are shared through ``JAX_COMPILATION_CACHE_DIR`` (see
``conftest.py``) so each notebook does not compile the tiny model from scratch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from conftest import SHARED_JAX_CACHE, nbval_markers  # noqa: E402


def execute(path: Path, timeout: int = 600) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    skipped = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "NBVAL_SKIP" in nbval_markers(cell.source):
            skipped[i] = cell.source
            cell.source = ""  # nbclient does not execute empty cells
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            store_widget_state=False, record_timing=False)
    start = time.monotonic()
    try:
        client.execute()
    finally:  # on an error too: the notebook then shows where and why
        for i, source in skipped.items():
            nb.cells[i].source = source
            nb.cells[i].outputs = []
            nb.cells[i].execution_count = None
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="default: examples/*.ipynb")
    args = parser.parse_args(argv)
    paths = [Path(p).resolve() for p in args.notebooks] or sorted(HERE.glob("*.ipynb"))
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(SHARED_JAX_CACHE))
    os.environ["TUNIXRT_NONINTERACTIVE"] = "1"  # what nbval/papermill get: runs wait
    total = 0.0
    for path in paths:
        elapsed = execute(path)
        total += elapsed
        print(f"{path.name}: {elapsed:.1f}s", flush=True)
    print(f"all: {total:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
