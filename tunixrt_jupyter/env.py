"""Where this notebook runs, and what it may use: one small helper per environment quirk.

Notebook hosts differ in ways that change what tunixrt must do: Colab and Kaggle share
environment variables, a kernel that already started JAX owns the TPU, batch runs
(Kaggle "Save & Run All", papermill, nbval) must wait for a run instead of returning at
once, and not every frontend can load every widget. Each helper answers one question from
cheap evidence (environment variables, sysfs, procfs, ``sys.modules``).

Importing this module must stay cheap: it never imports jax, ipywidgets or anywidget
(``%tunix_env`` and the renderer decision run before any of them are needed), and it
imports IPython only if the process already did.
"""

from __future__ import annotations

import html
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tpu import remove_stale_tpu_lockfile, stale_tpu_lockfile, tpu_chip_count, tpu_version

__all__ = [
    "AUTH_VARS",
    "EnvReport",
    "auth_env",
    "detect_accelerator",
    "detect_frontend",
    "is_interactive",
    "kernel_holds_accelerator",
    "remove_stale_tpu_lockfile",
    "report",
    "stale_tpu_lockfile",
    "tpu_chip_count",
    "widget_support",
]

FRONTENDS = ("kaggle", "colab", "vscode", "jupyter", "ipython", "terminal")
RENDERERS = ("anywidget", "ipywidgets", "text")
AUTH_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY")

#: Set by Cloud TPU VM images / TPU runtimes; with a /dev/vfio node they mean "TPU".
_TPU_ENV_VARS = ("TPU_ACCELERATOR_TYPE", "TPU_WORKER_ID", "TPU_CHIPS_PER_HOST_BOUNDS")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


# --------------------------------------------------------------------------- frontend


def _get_shell() -> Any | None:
    """The running IPython shell, or None; never imports IPython when nobody has."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    get = getattr(ipython, "get_ipython", None)
    try:
        return get() if callable(get) else None
    except Exception:  # a half-torn-down IPython must not break detection
        return None


def _class_chain(shell: Any) -> list[type]:
    return list(type(shell).__mro__)


def _is_colab_shell(shell: Any) -> bool:
    """Colab's kernel runs ``google.colab._shell.Shell`` (a ZMQInteractiveShell subclass)."""
    return any(cls.__module__.startswith("google.colab") for cls in _class_chain(shell))


def _is_kernel_shell(shell: Any) -> bool:
    """An ipykernel kernel: the shell is (a subclass of) ``ZMQInteractiveShell``.

    Matched by class name so that ipykernel is never imported just to ask.
    """
    return any(cls.__name__ == "ZMQInteractiveShell" for cls in _class_chain(shell))


def _user_ns(shell: Any) -> dict[str, Any]:
    ns = getattr(shell, "user_ns", None)
    return ns if isinstance(ns, dict) else {}


def detect_frontend() -> str:
    """Which notebook host runs this code: kaggle | colab | vscode | jupyter | ipython | terminal.

    Order matters. Kaggle comes first, from ``KAGGLE_KERNEL_RUN_TYPE``, because Kaggle
    images also set ``COLAB_RELEASE_TAG``; Colab is therefore recognised by its shell class,
    never by that variable. VS Code runs a plain ipykernel, so it is told apart by the
    variables and the ``__vsc_ipynb_file__`` name it injects; a VS Code *terminal* running
    IPython is not a notebook and stays "ipython".
    """
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):
        return "kaggle"
    shell = _get_shell()
    if shell is None:
        return "terminal"
    if _is_colab_shell(shell):
        return "colab"
    kernel = _is_kernel_shell(shell)
    if "__vsc_ipynb_file__" in _user_ns(shell):
        return "vscode"
    if kernel and (os.environ.get("VSCODE_PID") or os.environ.get("VSCODE_CWD")):
        return "vscode"
    if kernel:
        return "jupyter"
    return "ipython"


# ------------------------------------------------------------------------ accelerator


def _tpu_device_nodes(dev_root: Path) -> bool:
    """``/dev/accelN`` (TPU v2-v4), or ``/dev/vfio/N`` (v5e+) when TPU variables are set.

    ``/dev/vfio`` alone is generic PCI passthrough, so it needs the TPU variables as well.
    """
    try:
        if any(p.name[len("accel"):].isdigit() for p in dev_root.glob("accel[0-9]*")):
            return True
    except OSError:
        pass
    if not any(os.environ.get(v) for v in _TPU_ENV_VARS):
        return False
    vfio = dev_root / "vfio"
    try:
        return any(p.name.isdigit() for p in vfio.iterdir())
    except OSError:
        return False


def _has_gpu(dev_root: Path, proc_root: Path) -> bool:
    """NVIDIA device node, driver entry in procfs, or ``nvidia-smi`` on PATH (not run)."""
    if (dev_root / "nvidia0").exists():
        return True
    try:
        if any((proc_root / "driver" / "nvidia" / "gpus").iterdir()):
            return True
    except OSError:
        pass
    return shutil.which("nvidia-smi") is not None


def detect_accelerator(
    sysfs_root: str | os.PathLike[str] = "/sys",
    dev_root: str | os.PathLike[str] = "/dev",
    proc_root: str | os.PathLike[str] = "/proc",
) -> str:
    """"tpu" | "gpu" | "cpu", decided without starting JAX.

    Starting JAX to ask would make the kernel the owner of the TPU, and the training
    subprocess could then not open it. TPU first: a TPU VM never has a GPU, but a GPU VM
    on GCE has other Google PCI devices, which :func:`tpu.tpu_chips` filters out.
    """
    dev, proc = Path(dev_root), Path(proc_root)
    if tpu_chip_count(sysfs_root) > 0 or _tpu_device_nodes(dev):
        return "tpu"
    if _has_gpu(dev, proc):
        return "gpu"
    return "cpu"


def kernel_holds_accelerator() -> bool:
    """True when this process has already initialised a JAX backend.

    Once it has, libtpu in this process owns the TPU and a worker subprocess would fail
    with "TPU already in use"; the caller then refuses the subprocess executor. Read from
    ``sys.modules`` only: importing jax here would be slow and could itself start a backend.
    """
    bridge = sys.modules.get("jax._src.xla_bridge")
    if bridge is None:
        return False
    check = getattr(bridge, "backends_are_initialized", None)
    if callable(check):
        try:
            return bool(check())
        except Exception:
            pass
    return bool(getattr(bridge, "_backends", None))


# ------------------------------------------------------------------------ interactive


def _parent_argv(proc_root: Path) -> list[str]:
    try:
        raw = (proc_root / str(os.getppid()) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


#: Programs that execute notebooks unattended; an optional version suffix ("pytest-3")
#: or ".py" is allowed, nothing else, so "pytest.ipynb" or "pytest-demo" do not match.
_BATCH_TOOL = re.compile(
    r"^(pytest|py\.test|papermill|nbval|nbclient|nbconvert|jupyter-nbconvert|jupyter-execute)"
    r"(-?\d[\d.]*|\.py)?$"
)


def _is_batch_launcher(argv: list[str]) -> bool:
    """Whether a kernel's parent command line is a notebook *executor*, not a UI.

    Kernels started by ``jupyter nbconvert --execute``, ``jupyter execute``, papermill or
    ``pytest --nbval`` have that tool as their parent. Only program names are looked at
    (basenames of the first words, the module after ``-m``, the ``jupyter`` subcommand),
    so a path such as ``~/pytest-demo/bin/jupyter-lab`` does not count.
    """
    names = [os.path.basename(w) for w in argv[:4] if not w.startswith("-")]
    if any(_BATCH_TOOL.match(name) for name in names):
        return True
    pairs = zip(names, names[1:], strict=False)
    return any(a.startswith("jupyter") and b == "execute" for a, b in pairs)


def is_interactive(proc_root: str | os.PathLike[str] = "/proc") -> bool:
    """False when nobody is watching: notebook executed in batch, tests, or a plain script.

    ``%tunix_run`` returns at once in an interactive notebook (the widget shows progress)
    but must wait under batch execution, or the notebook ends before its run does. Rules:

    * ``TUNIXRT_NONINTERACTIVE`` = 1/true forces batch, = 0/false forces interactive;
    * Kaggle "Save & Run All" / scheduled runs (``KAGGLE_KERNEL_RUN_TYPE=Batch``);
    * papermill (``PAPERMILL_*`` variables or ``papermill`` imported);
    * nbval / pytest (``NBVAL``, ``PYTEST_CURRENT_TEST``: kernels inherit it from pytest);
    * a kernel whose parent process is nbconvert/nbclient/papermill/pytest;
    * no IPython and not ``python -i``: a script.
    """
    forced = os.environ.get("TUNIXRT_NONINTERACTIVE", "").strip().lower()
    if forced in _TRUE:
        return False
    if forced in _FALSE:
        return True
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE", "").lower() == "batch":
        return False
    if any(k.startswith("PAPERMILL_") for k in os.environ) or "papermill" in sys.modules:
        return False
    if os.environ.get("NBVAL") or os.environ.get("PYTEST_CURRENT_TEST"):
        return False
    shell = _get_shell()
    if shell is None:
        return bool(sys.flags.interactive or hasattr(sys, "ps1"))
    if _is_kernel_shell(shell) and _is_batch_launcher(_parent_argv(Path(proc_root))):
        return False
    return True


# ---------------------------------------------------------------------------- widgets


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def widget_support(frontend: str | None = None) -> dict[str, Any]:
    """Which widget stack can render here, decided without importing any of them.

    Returns ``anywidget`` (importable), ``ipywidgets`` and ``ipykernel`` (versions or None),
    ``frontend``, the chosen ``renderer`` (anywidget | ipywidgets | text) and ``reason``.

    anywidget ships its JavaScript inline as ESM, so it works where the frontend cannot
    fetch widget code from a CDN (VS Code offline). Kaggle images often lack anywidget, so
    plain ipywidgets is the fallback; without ipywidgets, or outside a notebook frontend,
    only text works. ``TUNIXRT_RENDERER`` overrides the decision.
    """
    frontend = frontend or detect_frontend()
    info: dict[str, Any] = {
        "anywidget": _importable("anywidget"),
        "ipywidgets": _version("ipywidgets"),
        "ipykernel": _version("ipykernel"),
        "frontend": frontend,
    }
    override = os.environ.get("TUNIXRT_RENDERER", "").strip().lower()
    if override in RENDERERS:
        renderer, reason = override, "TUNIXRT_RENDERER"
    elif frontend in ("terminal", "ipython"):
        renderer, reason = "text", f"{frontend} cannot display widgets"
    elif info["ipywidgets"] is None:
        renderer, reason = "text", "ipywidgets is not installed"
    elif info["anywidget"]:
        renderer, reason = "anywidget", "anywidget is installed (inline ESM, no CDN needed)"
    else:
        renderer, reason = "ipywidgets", "anywidget is not installed"
    info["renderer"] = renderer
    info["reason"] = reason
    return info


# ------------------------------------------------------------------------------- auth


def _colab_secret(name: str) -> str | None:
    """One Colab secret, or None if Colab is absent, the secret is missing or access denied.

    ``userdata.get`` raises its own exception types (SecretNotFoundError,
    NotebookAccessError, TimeoutException); none of them may stop a run from launching.
    """
    try:
        userdata = importlib.import_module("google.colab.userdata")
        value = userdata.get(name)
    except Exception:
        return None
    return value if isinstance(value, str) and value else None


def auth_env(include_colab_secrets: bool = False) -> dict[str, str]:
    """Credentials for a worker's environment: HF and Kaggle tokens.

    Taken from this process's environment and, when asked, from Colab secrets (asking can
    pop up a consent dialog, so it is opt-in). The result goes into the worker's
    environment only and must never be written to the run folder or the catalog.
    ``HF_TOKEN`` and the older ``HUGGING_FACE_HUB_TOKEN`` fill each other in, because
    huggingface_hub versions differ in which one they read.
    """
    found = {k: os.environ[k] for k in AUTH_VARS if os.environ.get(k)}
    if include_colab_secrets:
        for key in AUTH_VARS:
            if key not in found:
                secret = _colab_secret(key)
                if secret:
                    found[key] = secret
    hf = found.get("HF_TOKEN") or found.get("HUGGING_FACE_HUB_TOKEN")
    if hf:
        found.setdefault("HF_TOKEN", hf)
        found.setdefault("HUGGING_FACE_HUB_TOKEN", hf)
    return found


# ----------------------------------------------------------------------------- report

_VERSIONED = {
    "jax": "jax",
    "jaxlib": "jaxlib",
    "libtpu": "libtpu",
    "flax": "flax",
    "tunix": "google-tunix",
    "tunixrt": "tunixrt-jupyter",
}


def _versions() -> dict[str, str | None]:
    found = {name: _version(dist) for name, dist in _VERSIONED.items()}
    if found["libtpu"] is None:
        found["libtpu"] = _version("libtpu-nightly")
    return found


@dataclass
class EnvReport:
    """Snapshot of the environment, shown by ``%tunix_env`` and attached to bug reports."""

    frontend: str
    accelerator: str
    chips: int
    tpu_version: str | None
    python: str
    platform: str
    versions: dict[str, str | None] = field(default_factory=dict)
    widgets: dict[str, Any] = field(default_factory=dict)
    interactive: bool = True
    kernel_holds_accelerator: bool = False
    jax_platforms: str | None = None
    stale_tpu_lockfile: bool = False

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs shared by the text and HTML renderings."""
        accel = self.accelerator
        if self.accelerator == "tpu":
            accel = f"tpu ({self.chips} chip{'s' if self.chips != 1 else ''}"
            accel += f", {self.tpu_version})" if self.tpu_version else ")"
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items() if v) or "-"
        missing = [k for k in ("jax", "tunix") if not self.versions.get(k)]
        if missing:
            versions += f"  (not installed: {', '.join(missing)})"
        w = self.widgets
        widgets = f"{w.get('renderer', '?')}"
        if w.get("reason"):
            widgets += f" ({w['reason']})"
        rows = [
            ("frontend", self.frontend),
            ("accelerator", accel),
            ("python", f"{self.python} on {self.platform}"),
            ("versions", versions),
            ("widgets", widgets),
            ("ipywidgets", w.get("ipywidgets") or "not installed"),
            ("interactive", "yes" if self.interactive else "no (runs wait to finish)"),
            ("kernel holds accelerator",
             "yes (runs use the inline executor)" if self.kernel_holds_accelerator else "no"),
        ]
        if self.jax_platforms:
            rows.append(("JAX_PLATFORMS", self.jax_platforms))
        if self.stale_tpu_lockfile:
            rows.append(("stale /tmp/libtpu_lockfile", "yes (tpu.remove_stale_tpu_lockfile())"))
        return rows

    def __str__(self) -> str:
        rows = self.rows()
        width = max(len(label) for label, _ in rows)
        lines = ["tunixrt environment"]
        lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
            f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
            for label, value in self.rows()
        )
        return f"<table class='tunixrt-env'><caption>tunixrt environment</caption>{cells}</table>"


def report(
    sysfs_root: str | os.PathLike[str] = "/sys",
    dev_root: str | os.PathLike[str] = "/dev",
    proc_root: str | os.PathLike[str] = "/proc",
) -> EnvReport:
    """Collect an :class:`EnvReport` without importing jax, tunix or any widget library."""
    frontend = detect_frontend()
    accelerator = detect_accelerator(sysfs_root, dev_root, proc_root)
    return EnvReport(
        frontend=frontend,
        accelerator=accelerator,
        chips=tpu_chip_count(sysfs_root),
        tpu_version=tpu_version(sysfs_root),
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.machine()}",
        versions=_versions(),
        widgets=widget_support(frontend),
        interactive=is_interactive(proc_root),
        kernel_holds_accelerator=kernel_holds_accelerator(),
        jax_platforms=os.environ.get("JAX_PLATFORMS") or None,
        stale_tpu_lockfile=accelerator == "tpu" and stale_tpu_lockfile(proc_root=proc_root),
    )
