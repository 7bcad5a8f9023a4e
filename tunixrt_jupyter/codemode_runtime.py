"""Where a code-mode cell actually runs: compile, execute, report, save ``--out`` variables.

Shared by both code-mode executors: the kernel executor imports this module *inside* the
background kernel (:func:`kernel_bootstrap` builds the ``__tunixrt__`` object there), the
inline executor calls :func:`run_code` in its thread.

The body is compiled under the file name ``<tunix_run cell>`` and its source is put in
``linecache``, so a traceback shows the user's own lines with the cell's line numbers;
:func:`user_traceback` drops every frame above the cell (the runner's own).
"""

from __future__ import annotations

import json
import linecache
import os
import pickle
import traceback
from pathlib import Path
from typing import Any

from .codemode_capture import RunStopRequested

CELL_FILE = "<tunix_run cell>"
CODE_FILE = "code.py"
SPEC_FILE = "code.json"
INPUTS_DIR = "inputs"
OUTPUTS_DIR = "outputs"
PICKLE_SUFFIX = ".pkl"


# ---------------------------------------------------------------------------------------
# The run folder's code-mode files


def write_spec(run_dir: Path, source: str, spec: dict[str, Any]) -> None:
    (run_dir / CODE_FILE).write_text(source)
    (run_dir / SPEC_FILE).write_text(json.dumps({"code": True, **spec}, indent=1))


def read_spec(run_dir: Path) -> tuple[str, dict[str, Any]]:
    return (run_dir / CODE_FILE).read_text(), json.loads((run_dir / SPEC_FILE).read_text())


def is_code_run(run_dir: Path) -> bool:
    return (Path(run_dir) / SPEC_FILE).is_file()


_live_inputs: dict[str, dict[str, Any]] = {}


def hand_over_live_inputs(run_dir: Path, values: dict[str, Any]) -> None:
    """Inline runs get the ``--in`` objects themselves, not pickled copies."""
    _live_inputs[Path(run_dir).name] = values


def take_live_inputs(run_dir: Path) -> dict[str, Any]:
    values = _live_inputs.pop(Path(run_dir).name, None)
    if values is None:  # started some other way: whatever was pickled into the folder
        values, problems = read_pickles(run_dir, INPUTS_DIR)
        if problems:
            name, why = next(iter(problems.items()))
            raise ValueError(f"--in variable {name!r} could not be loaded: {why}")
    return values


def dumps(obj: Any) -> bytes:
    """cloudpickle when installed (lambdas, classes defined in a notebook), else pickle."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_pickles(run_dir: Path, folder: str, blobs: dict[str, bytes]) -> list[dict]:
    saved = []
    for name, data in blobs.items():
        path = Path(run_dir) / folder / f"{name}{PICKLE_SUFFIX}"
        _write_atomic(path, data)
        saved.append({"name": name, "path": str(path), "bytes": len(data)})
    return saved


def read_pickles(run_dir: Path, folder: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Every ``<name>.pkl`` in the folder, unpickled; problems by name."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    base = Path(run_dir) / folder
    if not base.is_dir():
        return values, problems
    for path in sorted(base.glob(f"*{PICKLE_SUFFIX}")):
        name = path.name[: -len(PICKLE_SUFFIX)]
        try:
            with open(path, "rb") as f:
                values[name] = pickle.load(f)
        except Exception as exc:  # noqa: BLE001 - report, never fail the run for it
            problems[name] = f"{type(exc).__name__}: {exc}"
    return values, problems


def dump_outputs(namespace: dict[str, Any], names: list[str], run_dir: Path) -> dict[str, Any]:
    """Pickle the ``--out`` variables into ``outputs/``; a bad one is a problem, not a failure."""
    blobs: dict[str, bytes] = {}
    problems: dict[str, str] = {}
    for name in names:
        if name not in namespace:
            problems[name] = "the cell did not define it"
            continue
        try:
            blobs[name] = dumps(namespace[name])
        except Exception as exc:  # noqa: BLE001 - any pickling failure is the same problem
            problems[name] = f"cannot be pickled ({type(exc).__name__}: {exc})"
    return {"saved": write_pickles(run_dir, OUTPUTS_DIR, blobs), "problems": problems}


# ---------------------------------------------------------------------------------------
# Compiling and running the body


def _has_ipython_syntax(source: str) -> bool:
    return any(line.lstrip().startswith(("%", "!")) for line in source.splitlines())


def compile_cell(source: str, *, for_tracebacks: bool = True) -> Any:
    """Compile the body as ``<tunix_run cell>`` (``%magic``/``!cmd`` lines allowed).

    ``for_tracebacks`` puts the source in ``linecache`` so tracebacks show the user's lines
    (off for a mere syntax check, which must not replace a running cell's source there).
    """
    if for_tracebacks:
        linecache.cache[CELL_FILE] = (len(source), None, source.splitlines(True), CELL_FILE)
    code = source
    if _has_ipython_syntax(source):
        from IPython.core.inputtransformer2 import TransformerManager

        code = TransformerManager().transform_cell(source)
    return compile(code, CELL_FILE, "exec", dont_inherit=True)


def user_traceback(exc: BaseException) -> str:
    """The traceback from the first frame in the cell on: no tunixrt runner frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != CELL_FILE:
        tb = tb.tb_next
    if tb is None:  # raised before the cell ran a line (a SyntaxError): no frames at all
        return "".join(traceback.format_exception_only(type(exc), exc))
    return "".join(traceback.format_exception(type(exc), exc, tb))


def error_result(exc: BaseException) -> dict[str, Any]:
    message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return {"status": "error", "ename": type(exc).__name__, "evalue": str(exc),
            "message": message.splitlines()[-1] if message else type(exc).__name__,
            "traceback": user_traceback(exc)}


def run_code(source: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Run the body in ``namespace``; ``{"status": ok|error|stopped|interrupted, ...}``."""
    try:
        exec(compile_cell(source), namespace)  # noqa: S102 - running the user's cell is the job
    except RunStopRequested:
        return {"status": "stopped"}
    except KeyboardInterrupt:
        return {"status": "interrupted"}
    except SystemExit as exc:
        if exc.code in (None, 0):
            return {"status": "ok"}
        return error_result(exc)
    except BaseException as exc:  # noqa: BLE001 - every failure of the cell is reported
        return error_result(exc)
    return {"status": "ok"}


# ---------------------------------------------------------------------------------------
# Inside the background kernel


class KernelSession:
    """``__tunixrt__`` in a code-mode kernel: the run's capture, slot and body."""

    def __init__(self, run_dir: str):
        from .codemode_capture import CaptureContext, bind_process, install

        self.run_dir = Path(run_dir)
        os.environ["TUNIXRT_RUN_DIR"] = str(self.run_dir)
        self.source, self.spec = read_spec(self.run_dir)
        self.namespace = _user_namespace()
        inputs, problems = read_pickles(self.run_dir, INPUTS_DIR)
        if problems:
            name, why = next(iter(problems.items()))
            raise RuntimeError(f"--in variable {name!r} could not be loaded in the kernel: {why}")
        self.namespace.update(inputs)
        install()
        self.context = CaptureContext(self.run_dir)
        bind_process(self.context)
        self.slot: Any = None
        self.state = "waiting"
        self.result: dict[str, Any] = {}

    def acquire(self) -> str:
        """Wait for a concurrency slot (FIFO across processes); ``ready`` or ``stopped``."""
        from .config import load_config
        from .slots import acquire_slot

        cfg = load_config(self.run_dir / "config.yaml")
        slots_dir = self.run_dir.parent.parent / "slots"
        try:
            self.slot = acquire_slot(slots_dir, self.run_dir.name, cfg.run.max_concurrent,
                                     should_stop=self.context.should_stop)
        except KeyboardInterrupt:
            self.slot = None
        self.state = "ready" if self.slot is not None else "stopped"
        return self.state

    def run_body(self) -> None:
        self.result = run_code(self.source, self.namespace)
        if self.result["status"] == "ok" and self.spec.get("outputs"):
            try:
                self.result["outputs"] = dump_outputs(self.namespace, self.spec["outputs"],
                                                      self.run_dir)
            except KeyboardInterrupt:
                self.result = {"status": "interrupted"}

    def result_json(self) -> str:
        return json.dumps(self.result, default=str)

    def release(self) -> None:
        if self.slot is not None:
            self.slot.release()
            self.slot = None
        from .codemode_capture import bind_process

        bind_process(None)
        self.context.close()


def _user_namespace() -> dict[str, Any]:
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None  # noqa: N806
    shell = get_ipython() if get_ipython else None
    if shell is not None:
        return shell.user_ns
    import __main__

    return __main__.__dict__


def kernel_bootstrap(run_dir: str) -> KernelSession:
    return KernelSession(run_dir)
