"""Code mode: ``%%tunix_run --code`` runs your own Tunix cell in the background, supervised.

::

    %%tunix_run --code --name sft-probe --in data --out final_loss
    ...your Tunix training code, unchanged...

The cell's body runs in a background Jupyter kernel (``executor kernel``, the default) or
in a thread of this kernel (``--executor inline``, for an accelerator this kernel holds).
It is a run like any other: a run folder (with the body as ``code.py``), the widget,
cancel, timeout and the history. Tunix's scalars become metrics with no change to the
code (see ``codemode_capture``); ``tunixrt.log(step=..., name=value)`` adds your own.

``--in a,b`` sends notebook variables (pickled for a kernel run: checked before anything
starts); ``--out c`` brings variables back into ``run.outputs`` when the run completes
(:func:`load_outputs` reads them later). ``--keep-kernel`` leaves the kernel running:
:func:`attach` / ``%tunix_attach ID`` talk to it.
"""

from __future__ import annotations

import io
import keyword
import os
import re
import tokenize
from pathlib import Path
from typing import Any

from .codemode_attach import attach, register_attach_magic, shutdown_kept_kernel
from .codemode_outputs import load_outputs
from .handles import Run

__all__ = ["start_code_run", "load_outputs", "attach", "shutdown_kept_kernel"]

CODE_EXECUTORS = ("kernel", "inline")
DEFAULT_EXECUTOR = "kernel"


def _names(text: str | None, flag: str) -> list[str]:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    bad = [n for n in names if not n.isidentifier() or keyword.iskeyword(n)]
    if bad:
        raise ValueError(f"{flag}: {', '.join(map(repr, bad))} is not a variable name; "
                         f"write {flag} a,b with Python names")
    return list(dict.fromkeys(names))


def default_name(source: str) -> str:
    """``code-<first identifier of the cell>``: ``import jax`` -> ``code-jax``."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
                return f"code-{tok.string}"
    except (tokenize.TokenError, IndentationError, SyntaxError):
        match = re.search(r"[A-Za-z_]\w*", source)
        if match:
            return f"code-{match.group(0)}"
    return "code"


def _choose_executor(args: Any) -> str:
    from . import api

    chosen = getattr(args, "executor", None)
    if chosen is None:
        default = api.session_defaults().get("executor")
        chosen = default if default in CODE_EXECUTORS else DEFAULT_EXECUTOR
    if chosen not in CODE_EXECUTORS:
        raise ValueError(f"--executor {chosen}: a --code cell runs in a background kernel "
                         "(--executor kernel, the default) or in this kernel's process "
                         "(--executor inline)")
    return chosen


def _check_syntax(source: str) -> None:
    from .codemode_runtime import compile_cell

    try:
        compile_cell(source, for_tracebacks=False)
    except SyntaxError as exc:
        raise ValueError(f"the cell does not compile: {exc.msg} (line {exc.lineno}); "
                         "nothing was started") from None


def _collect_inputs(names: list[str], namespace: dict[str, Any], pickle_them: bool
                    ) -> tuple[dict[str, Any], dict[str, bytes]]:
    from .codemode_runtime import dumps

    missing = [n for n in names if n not in namespace]
    if missing:
        raise ValueError(f"--in: {', '.join(map(repr, missing))} "
                         f"{'is' if len(missing) == 1 else 'are'} not defined in the notebook; "
                         "nothing was started")
    values = {n: namespace[n] for n in names}
    blobs: dict[str, bytes] = {}
    if pickle_them:
        for name, value in values.items():
            try:
                blobs[name] = dumps(value)
            except Exception as exc:  # noqa: BLE001 - any pickling failure, one message
                raise ValueError(
                    f"--in: variable {name!r} ({type(value).__name__}) cannot be sent to the "
                    f"background kernel: it cannot be pickled ({type(exc).__name__}: {exc}). "
                    "Build it inside the cell instead, or use --executor inline; nothing was "
                    "started") from None
    return values, blobs


def start_code_run(cell: str, args: Any, shell: Any) -> Run:
    """Start ``cell`` as a code-mode run and return its :class:`Run` at once.

    ``args`` carries ``name, executor, inputs ("a,b"), outputs ("c"), keep_kernel, timeout,
    tag`` (the ``%%tunix_run`` flags); ``shell`` is the IPython shell whose ``user_ns``
    holds the ``--in`` variables. Every check (executor, names, syntax, ``--in`` variables
    exist and pickle) happens before the run folder is created.
    """
    from . import api, env
    from .codemode_outputs import register_handle
    from .codemode_runtime import INPUTS_DIR, hand_over_live_inputs, write_pickles, write_spec
    from .events import append_event

    source = cell or ""
    if not source.strip():
        raise ValueError("%%tunix_run --code needs Python code in the cell")
    if getattr(args, "dry_run", False):
        raise ValueError("--dry-run checks a config run; a --code cell has nothing to dry-run")
    executor = _choose_executor(args)
    inputs = _names(getattr(args, "inputs", None), "--in")
    outputs = _names(getattr(args, "outputs", None), "--out")
    _check_syntax(source)
    namespace = getattr(shell, "user_ns", None) or {}
    values, blobs = _collect_inputs(inputs, namespace, pickle_them=executor == "kernel")
    keep_kernel = bool(getattr(args, "keep_kernel", False))
    if keep_kernel and executor != "kernel":
        raise ValueError("--keep-kernel needs --executor kernel (an inline run has no kernel)")

    tags = [*(getattr(args, "tag", None) or []), "code"]
    overrides: dict[str, Any] = {"name": getattr(args, "name", None) or default_name(source),
                                 "tags": list(dict.fromkeys(tags)), "run.executor": executor,
                                 "run.kind": "code",
                                 "run.mode": "local"}
    if getattr(args, "timeout", None) is not None:
        overrides["run.timeout_s"] = args.timeout
    cfg = api.build_config(None, overrides=overrides)

    run = api.create_run(cfg, api.current_home())
    write_spec(run.dir, source, {"executor": executor, "inputs": inputs, "outputs": outputs,
                                 "keep_kernel": keep_kernel, "cwd": os.getcwd()})
    write_pickles(run.dir, INPUTS_DIR, blobs)
    append_event(run.dir, "info", key="code", value=True)
    register_handle(run)
    if executor == "inline":
        hand_over_live_inputs(run.dir, values)
    if keep_kernel:
        register_attach_magic(shell)
    return api.launch(run, cfg, env.auth_env())


def code_of(run: Run) -> str | None:
    """The body of a code-mode run (``code.py`` in its folder), or None for a config run."""
    path = Path(run.dir) / "code.py"
    return path.read_text() if path.is_file() else None
