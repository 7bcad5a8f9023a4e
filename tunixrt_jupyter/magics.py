"""IPython magics: ``%tunix_run``, ``%%tunix_run``, ``%tunix_runs``, ``%tunix_show`` and friends.

The magics only parse and display: launching, cancelling and querying are the API's job
(``api.py``), and drawing is the widgets' (``widgets/``). Bad input is shown as a short
red message naming the field and the fix, never as a traceback.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .config import ConfigError, parse_overrides, split_config_args

_loaded_shells: set[int] = set()


def show_error(message: str) -> None:
    """A short red message (HTML) with a plain-text twin for consoles and saved notebooks."""
    import html

    from IPython.display import display

    display({
        "text/plain": f"tunixrt: {message}",
        "text/html": (
            '<pre class="tunixrt-error" style="color:#b00020;white-space:pre-wrap;'
            f'margin:0">tunixrt: {html.escape(message)}</pre>'
        ),
    }, raw=True)


def _expand_vars(text: str, namespace: dict[str, Any]) -> str:
    """``{var}`` and ``$var`` from the notebook, only for names that exist (YAML keeps braces)."""

    def sub(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return str(namespace[name]) if name in namespace else match.group(0)

    return re.sub(r"\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)", sub, text)


_FLAG_KEYS = {
    "name": "name", "executor": "run.executor", "timeout": "run.timeout_s",
    "max_steps": "training.max_steps", "lr": "training.learning_rate",
    "batch_size": "training.batch_size", "model": "model", "dataset": "dataset",
    "platform": "run.platform", "lora": "model.lora.enabled",
    "resume_from": "training.resume_from",
}


@magics_class
class TunixMagics(Magics):
    """The notebook front of tunixrt."""

    @magic_arguments()
    @argument("args", nargs="*", help="a CONFIG.yaml path and/or key=value overrides "
                                      "(e.g. training.learning_rate=3e-4)")
    @argument("--name", help="run name shown in the widget and the history")
    @argument("--dry-run", action="store_true",
              help="validate config + dataset and write the Tunix manifest, no training")
    @argument("--wait", action="store_true", help="block the cell until the run ends")
    @argument("--no-wait", action="store_true",
              help="return at once even in non-interactive runs (nbval, papermill, Kaggle)")
    @argument("--executor", help="subprocess (default) | inline | kernel")
    @argument("--timeout", type=float, help="seconds before the run ends as `timeout`")
    @argument("--max-steps", type=int, help="training.max_steps")
    @argument("--lr", type=float, help="training.learning_rate")
    @argument("--batch-size", type=int, help="training.batch_size")
    @argument("--model", help="tiny | a family | a HF/Kaggle id | a local folder")
    @argument("--dataset", help="tiny | path/to/data.jsonl")
    @argument("--platform", help="auto | cpu | gpu | tpu")
    @argument("--lora", action="store_true", default=None, help="train LoRA adapters only")
    @argument("--tag", action="append", help="a tag (repeatable)")
    @argument("--resume-from", help="a run id: start from that run's latest checkpoint")
    @argument("--code", action="store_true",
              help="%%tunix_run only: run the cell's Python in the background")
    @argument("--in", dest="inputs", help="code mode: notebook variables to send, a,b")
    @argument("--out", dest="outputs", help="code mode: variables to bring back, c,d")
    @argument("--keep-kernel", action="store_true", help="code mode: keep the kernel after")
    @argument("--quiet", action="store_true", help="do not display the widget")
    @line_cell_magic
    def tunix_run(self, line: str = "", cell: str | None = None) -> Any:
        """Start a Tunix training run in the background and show its live widget.

        Examples::

            %tunix_run --max-steps 40 --name first
            r = %tunix_run configs/lora.yaml training.learning_rate=3e-4 --wait
            %tunix_run --dry-run --dataset data/train.jsonl

            %%tunix_run --name from-yaml
            model: {lora: {enabled: true, rank: 8}}
            training: {max_steps: 60, batch_size: 8}

        ``{var}`` and ``$var`` in the line or a YAML cell are replaced by notebook
        variables. Returns the :class:`~tunixrt_jupyter.handles.Run` handle.
        """
        try:
            return self._tunix_run(line, cell)
        except (ConfigError, UsageError) as exc:
            show_error(str(exc))
        except (KeyError, ValueError, RuntimeError, ImportError) as exc:
            show_error(exc.args[0] if exc.args else str(exc))
        return None

    def _tunix_run(self, line: str, cell: str | None) -> Any:
        from . import api, env

        ns = self.shell.user_ns
        args = parse_argstring(self.tunix_run, line)
        config, overrides = split_config_args(args.args)
        if args.code:
            if cell is None:
                raise ValueError("--code needs a cell: use %%tunix_run --code on a Python cell")
            from .codemode import start_code_run

            run = start_code_run(cell, args, self.shell)
        else:
            flags = {key: getattr(args, attr) for attr, key in _FLAG_KEYS.items()
                     if getattr(args, attr) is not None}
            if args.tag:
                flags["tags"] = args.tag
            source: Any = config
            if cell is not None and cell.strip():
                if config is not None:
                    raise ValueError("give the config either as a path or as the cell, not both")
                source = _expand_vars(cell, ns)
            typed = parse_overrides(overrides)
            cfg = api.build_config(source, dry_run=args.dry_run, overrides={**typed, **flags})
            _refuse_if_kernel_owns_accelerator(cfg, env)
            run = api.launch(api.create_run(cfg, api.current_home()), cfg, env.auth_env())
        wait = args.wait or (not args.no_wait and not env.is_interactive())
        if not args.quiet and api.session_defaults().get("widgets", True):
            from IPython.display import display

            from .widgets import make_run_view

            display(make_run_view(run))
        if wait:
            run.wait()
        return run

    @magic_arguments()
    @argument("--status", help="one or more of pending,running,completed,failed,cancelled,"
                               "timeout,lost (comma-separated)")
    @argument("--model", help="model label(s), comma-separated")
    @argument("--dataset", help="dataset label(s), comma-separated")
    @argument("--mode", help="local | dry-run")
    @argument("--tag", help="tag(s), comma-separated")
    @argument("--name", help="name substring")
    @argument("--since", help="YYYY-MM-DD or ISO time")
    @argument("--limit", type=int, default=20, help="rows per page")
    @argument("--page", type=int, default=1, help="page number, from 1")
    @argument("--sort", default="-created_at", help="a column; prefix - for descending")
    @line_magic
    def tunix_runs(self, line: str = "") -> Any:
        """Show the run history (sortable, filterable, paged); returns a RunList.

        Example: ``%tunix_runs --status completed,failed --sort final_loss --limit 10``
        """
        from . import api

        try:
            args = parse_argstring(self.tunix_runs, line)
            filters = {k: _csv(getattr(args, k)) for k in ("status", "model", "dataset", "mode")}
            filters["tags"] = _csv(args.tag)
            limit = max(1, args.limit)
            result = api.runs(name=args.name, since=args.since, sort=args.sort, limit=limit,
                              offset=(max(1, args.page) - 1) * limit,
                              **{k: v for k, v in filters.items() if v})
        except (ConfigError, UsageError, KeyError, ValueError) as exc:
            show_error(exc.args[0] if exc.args else str(exc))
            return None
        if api.session_defaults().get("widgets", True):
            from IPython.display import display

            from .widgets import make_runs_view

            display(make_runs_view(result))
        return result

    @line_magic
    def tunix_show(self, line: str = "") -> Any:
        """Re-attach a live widget to any run: ``%tunix_show ID`` (id, prefix or short id)."""
        from IPython.display import display

        from . import api
        from .widgets import make_run_view

        run_id = line.strip()
        if not run_id:
            show_error("%tunix_show needs a run id; list them with %tunix_runs")
            return None
        try:
            run = api.get(run_id)
        except KeyError as exc:
            show_error(exc.args[0])
            return None
        if (run.dir / "outputs").is_dir():
            from .codemode_outputs import load_outputs

            load_outputs(run)
        display(make_run_view(run))
        return run

    @magic_arguments()
    @argument("run_id")
    @argument("-n", type=int, default=50, help="number of lines")
    @line_magic
    def tunix_logs(self, line: str = "") -> None:
        """Print the last lines of a run's output: ``%tunix_logs ID -n 100``."""
        from . import api

        try:
            args = parse_argstring(self.tunix_logs, line)
            run = api.get(args.run_id)
        except (KeyError, ValueError, UsageError) as exc:
            show_error(exc.args[0] if exc.args else str(exc))
            return
        print("\n".join(run.logs(args.n)))

    @line_magic
    def tunix_cancel(self, line: str = "") -> str | None:
        """Cancel a pending or running run: ``%tunix_cancel ID``."""
        from . import api

        try:
            run = api.get(line.strip())
        except KeyError as exc:
            show_error(exc.args[0])
            return None
        status = run.cancel()
        print(f"{run.id}: {status}")
        return status

    @line_magic
    def tunix_config(self, line: str = "") -> dict[str, Any]:
        """Session defaults: ``%tunix_config home=runs executor=subprocess max_concurrent=1
        widgets=false``; with no argument, print them."""
        import yaml

        from . import api

        defaults = api.session_defaults()
        allowed = ("home", "executor", "max_concurrent", "platform", "timeout_s", "widgets")
        for item in shlex.split(line):
            key, sep, value = item.partition("=")
            if not sep or key not in allowed:
                show_error(f"{item!r}: use key=value with key one of {', '.join(allowed)}")
                return dict(defaults)
            defaults[key] = yaml.safe_load(value) if value else None
        if not line.strip():
            shown = {"home": str(api.current_home().root), **defaults}
            print("\n".join(f"{k} = {v}" for k, v in shown.items()))
        return dict(defaults)

    @line_magic
    def tunix_env(self, line: str = "") -> Any:
        """Report where this notebook runs: frontend, accelerator, widget support, versions."""
        from .env import report

        return report()


def _csv(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _refuse_if_kernel_owns_accelerator(cfg: Any, env: Any) -> None:
    """One process per TPU: a subprocess would silently train on CPU, so refuse loudly."""
    if cfg.run.executor != "subprocess" or cfg.run.mode == "dry-run":
        return
    wants = cfg.run.platform
    accel = env.detect_accelerator()
    if wants in ("tpu", "auto") and accel == "tpu" and env.kernel_holds_accelerator():
        raise RuntimeError(
            "this kernel already initialised JAX and holds the TPU, so a separate training "
            "process cannot use it. Use --executor inline (trains in a thread of this kernel) "
            "or restart the kernel and start the run before touching jax."
        )


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext tunixrt``: register the magics (loading twice is harmless)."""
    if id(ipython) in _loaded_shells:
        return
    ipython.register_magics(TunixMagics)
    from .codemode_attach import register_attach_magic

    register_attach_magic(ipython)
    _loaded_shells.add(id(ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext tunixrt``: remove the magics and stop widget update threads."""
    magics = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        for name in [n for n in magics[kind] if n.startswith("tunix_")]:
            magics[kind].pop(name, None)
    _loaded_shells.discard(id(ipython))
    ipython._tunixrt_attach_magic = False
    try:
        from .widgets import shutdown_views
    except ImportError:
        return
    shutdown_views()
