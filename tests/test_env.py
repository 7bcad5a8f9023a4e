"""Environment detection (tunixrt_jupyter.env, tunixrt_jupyter.tpu).

Real Colab, Kaggle, VS Code and TPU hosts cannot be reached from CI, so each rule is
exercised with the environment faked: monkeypatched variables, a fake sysfs/procfs/dev
tree under tmp_path, and module stubs in ``sys.modules`` (a fake ``google.colab._shell``
shell class, a fake ``jax._src.xla_bridge``). Two tests use the real thing instead: a
fresh interpreter proves the import stays light, and a real JAX CPU backend and a real
nbconvert-executed kernel check the rules against the libraries they depend on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from tunixrt_jupyter import env, tpu

REPO = Path(__file__).resolve().parents[1]

_ENV_VARS = (
    "KAGGLE_KERNEL_RUN_TYPE", "COLAB_RELEASE_TAG", "VSCODE_PID", "VSCODE_CWD",
    "TUNIXRT_NONINTERACTIVE", "TUNIXRT_RENDERER", "NBVAL", "PYTEST_CURRENT_TEST",
    "TPU_ACCELERATOR_TYPE", "TPU_WORKER_ID", "TPU_CHIPS_PER_HOST_BOUNDS", "JAX_PLATFORMS",
    *env.AUTH_VARS,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test from a host with none of the variables the rules look at."""
    for name in list(os.environ):
        if name in _ENV_VARS or name.startswith("PAPERMILL_"):
            monkeypatch.delenv(name)


# ------------------------------------------------------------------ fake shells


class ZMQInteractiveShell:
    """Stands in for ipykernel's shell; detection matches the class name, not identity."""

    __module__ = "ipykernel.zmqshell"

    def __init__(self, user_ns: dict | None = None) -> None:
        self.user_ns = user_ns if user_ns is not None else {}


class TerminalInteractiveShell:
    __module__ = "IPython.terminal.interactiveshell"
    user_ns: dict = {}


def _colab_shell_class(monkeypatch: pytest.MonkeyPatch) -> type:
    """A stub ``google.colab._shell`` module whose Shell subclasses the kernel shell."""
    module = types.ModuleType("google.colab._shell")
    shell_cls = type("Shell", (ZMQInteractiveShell,), {"__module__": "google.colab._shell"})
    module.Shell = shell_cls
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "google.colab._shell", module)
    return shell_cls


def use_shell(monkeypatch: pytest.MonkeyPatch, shell: object | None) -> None:
    """Make ``IPython.get_ipython()`` return ``shell`` via a stub IPython module."""
    stub = types.ModuleType("IPython")
    stub.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", stub)


def no_ipython(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)


# -------------------------------------------------------------------- frontend


def test_kaggle_wins_even_though_kaggle_sets_colab_release_tag(monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20240101")
    use_shell(monkeypatch, ZMQInteractiveShell())
    assert env.detect_frontend() == "kaggle"


def test_colab_release_tag_alone_is_not_colab(monkeypatch):
    """The trap: Kaggle images export COLAB_RELEASE_TAG; only Colab's shell class counts."""
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20240101")
    use_shell(monkeypatch, ZMQInteractiveShell())
    assert env.detect_frontend() == "jupyter"


def test_colab_detected_by_shell_class(monkeypatch):
    shell_cls = _colab_shell_class(monkeypatch)
    use_shell(monkeypatch, shell_cls())
    assert env.detect_frontend() == "colab"


def test_colab_subclass_of_colab_shell_still_colab(monkeypatch):
    shell_cls = _colab_shell_class(monkeypatch)
    sub = type("PatchedShell", (shell_cls,), {"__module__": "someones.patch"})
    use_shell(monkeypatch, sub())
    assert env.detect_frontend() == "colab"


@pytest.mark.parametrize("var", ["VSCODE_PID", "VSCODE_CWD"])
def test_vscode_by_variable_in_a_kernel(monkeypatch, var):
    monkeypatch.setenv(var, "1234")
    use_shell(monkeypatch, ZMQInteractiveShell())
    assert env.detect_frontend() == "vscode"


def test_vscode_by_injected_notebook_name(monkeypatch):
    use_shell(monkeypatch, ZMQInteractiveShell({"__vsc_ipynb_file__": "/w/train.ipynb"}))
    assert env.detect_frontend() == "vscode"


def test_ipython_in_vscode_terminal_is_not_a_notebook(monkeypatch):
    monkeypatch.setenv("VSCODE_PID", "1234")
    use_shell(monkeypatch, TerminalInteractiveShell())
    assert env.detect_frontend() == "ipython"


def test_plain_kernel_is_jupyter(monkeypatch):
    use_shell(monkeypatch, ZMQInteractiveShell())
    assert env.detect_frontend() == "jupyter"


def test_kernel_subclass_is_jupyter(monkeypatch):
    sub = type("CustomShell", (ZMQInteractiveShell,), {"__module__": "my.kernel"})
    use_shell(monkeypatch, sub())
    assert env.detect_frontend() == "jupyter"


def test_terminal_ipython(monkeypatch):
    use_shell(monkeypatch, TerminalInteractiveShell())
    assert env.detect_frontend() == "ipython"


def test_no_ipython_module_is_terminal(monkeypatch):
    no_ipython(monkeypatch)
    assert env.detect_frontend() == "terminal"


def test_ipython_imported_but_no_shell_is_terminal(monkeypatch):
    use_shell(monkeypatch, None)
    assert env.detect_frontend() == "terminal"


# ----------------------------------------------------------------- accelerator


def pci(sys_root: Path, addr: str, vendor: str, device: str, cls: str = "0x000000") -> None:
    d = sys_root / "bus" / "pci" / "devices" / addr
    d.mkdir(parents=True)
    (d / "vendor").write_text(vendor + "\n")
    (d / "device").write_text(device + "\n")
    (d / "class").write_text(cls + "\n")


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """An empty fake host: sysfs, /dev, /proc, and a PATH without nvidia-smi."""
    roots = types.SimpleNamespace(
        sys=tmp_path / "sys", dev=tmp_path / "dev", proc=tmp_path / "proc",
        bin=tmp_path / "bin",
    )
    for p in vars(roots).values():
        p.mkdir()
    pci(roots.sys, "0000:00:01.0", "0x8086", "0x1237", "0x060000")  # an Intel bridge
    monkeypatch.setenv("PATH", str(roots.bin))
    return roots


def detect(h: types.SimpleNamespace) -> str:
    return env.detect_accelerator(h.sys, h.dev, h.proc)


def test_empty_host_is_cpu(host):
    assert detect(host) == "cpu"
    assert env.tpu_chip_count(host.sys) == 0


def test_tpu_from_pci_ids(host):
    for i in range(4):
        pci(host.sys, f"0000:00:0{4 + i}.0", "0x1ae0", "0x005e", "0x120000")
    assert detect(host) == "tpu"
    assert env.tpu_chip_count(host.sys) == 4
    assert tpu.tpu_version(host.sys) == "v4"


def test_google_nic_and_disk_are_not_tpus(host):
    """Every GCE VM (Colab/Kaggle GPU hosts too) has Google-vendor gVNIC and NVMe devices."""
    pci(host.sys, "0000:00:04.0", "0x1ae0", "0x0042", "0x020000")  # gVNIC
    pci(host.sys, "0000:00:05.0", "0x1ae0", "0x001f", "0x010802")  # Google NVMe
    assert env.tpu_chip_count(host.sys) == 0
    assert detect(host) == "cpu"


def test_tpu_chip_count_ignores_nic_next_to_tpus(host):
    pci(host.sys, "0000:00:04.0", "0x1ae0", "0x0042", "0x020000")
    pci(host.sys, "0000:00:05.0", "0x1ae0", "0x0063", "0x120000")
    assert env.tpu_chip_count(host.sys) == 1
    assert tpu.tpu_version(host.sys) == "v5e"


def test_unknown_future_tpu_counts_by_accelerator_class(host):
    pci(host.sys, "0000:00:05.0", "0x1ae0", "0x00ff", "0x120000")
    assert env.tpu_chip_count(host.sys) == 1
    assert tpu.tpu_version(host.sys) == "unknown"


def test_tpu_from_dev_accel(host):
    (host.dev / "accel0").touch()
    assert detect(host) == "tpu"


def test_generic_accel_folder_is_not_tpu(host):
    """Intel NPUs use /dev/accel/accel0 (a folder), not /dev/accelN."""
    (host.dev / "accel").mkdir()
    (host.dev / "accel" / "accel0").touch()
    assert detect(host) == "cpu"


def test_vfio_needs_tpu_variables(host, monkeypatch):
    (host.dev / "vfio").mkdir()
    (host.dev / "vfio" / "vfio").touch()
    (host.dev / "vfio" / "0").touch()
    assert detect(host) == "cpu"
    monkeypatch.setenv("TPU_ACCELERATOR_TYPE", "v5litepod-8")
    assert detect(host) == "tpu"


def test_gpu_from_device_node(host):
    (host.dev / "nvidia0").touch()
    assert detect(host) == "gpu"


def test_gpu_from_proc_driver(host):
    (host.proc / "driver" / "nvidia" / "gpus" / "0000:00:04.0").mkdir(parents=True)
    assert detect(host) == "gpu"


def test_gpu_from_nvidia_smi_on_path_without_running_it(host):
    smi = host.bin / "nvidia-smi"
    marker = host.bin / "ran"
    smi.write_text(f"#!/bin/sh\ntouch {marker}\n")
    smi.chmod(0o755)
    assert detect(host) == "gpu"
    assert not marker.exists()


def test_tpu_checked_before_gpu(host):
    pci(host.sys, "0000:00:05.0", "0x1ae0", "0x006f", "0x120000")
    (host.dev / "nvidia0").touch()
    assert detect(host) == "tpu"


# --------------------------------------------------------- kernel holds the TPU


def _bridge(monkeypatch: pytest.MonkeyPatch, **attrs: object) -> None:
    module = types.ModuleType("jax._src.xla_bridge")
    for k, v in attrs.items():
        setattr(module, k, v)
    monkeypatch.setitem(sys.modules, "jax._src.xla_bridge", module)


def test_kernel_holds_nothing_without_jax(monkeypatch):
    monkeypatch.delitem(sys.modules, "jax._src.xla_bridge", raising=False)
    assert env.kernel_holds_accelerator() is False


def test_jax_imported_but_no_backend_yet(monkeypatch):
    _bridge(monkeypatch, _backends={})
    assert env.kernel_holds_accelerator() is False


def test_jax_backend_initialised(monkeypatch):
    _bridge(monkeypatch, _backends={"tpu": object()})
    assert env.kernel_holds_accelerator() is True


def test_prefers_jax_own_check(monkeypatch):
    _bridge(monkeypatch, _backends={}, backends_are_initialized=lambda: True)
    assert env.kernel_holds_accelerator() is True


def test_kernel_holds_accelerator_with_real_jax():
    """Against the installed jax: False after import, True once a backend exists."""
    pytest.importorskip("jax")
    code = (
        "import json, jax\n"
        "from tunixrt_jupyter.env import kernel_holds_accelerator as k\n"
        "before = k()\n"
        "jax.devices()\n"
        "print(json.dumps([before, k()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}, check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, True]


# ------------------------------------------------------------------ interactive


def parent_cmdline(proc: Path, *argv: str) -> None:
    d = proc / str(os.getppid())
    d.mkdir(parents=True, exist_ok=True)
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")


def interactive(monkeypatch: pytest.MonkeyPatch, proc: Path) -> bool:
    """is_interactive() with pytest's own marker removed.

    pytest sets PYTEST_CURRENT_TEST again at the start of each test's call phase, after
    the autouse fixture cleared it, so it is cleared here, right before asking.
    """
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    return env.is_interactive(proc)


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kernel shell whose parent is JupyterLab; returns the fake /proc root."""
    use_shell(monkeypatch, ZMQInteractiveShell())
    proc = tmp_path / "proc"
    parent_cmdline(proc, "/usr/bin/python3", "/usr/local/bin/jupyter-lab", "--port=8888")
    return proc


def test_notebook_under_jupyterlab_is_interactive(kernel, monkeypatch):
    assert interactive(monkeypatch, kernel) is True


def test_pytest_current_test_means_batch(kernel, monkeypatch):
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "test_nb.ipynb::Cell 0 (call)")
    assert env.is_interactive(kernel) is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KAGGLE_KERNEL_RUN_TYPE", "Batch"),
        ("PAPERMILL_OUTPUT_PATH", "out.ipynb"),
        ("NBVAL", "1"),
        ("TUNIXRT_NONINTERACTIVE", "1"),
        ("TUNIXRT_NONINTERACTIVE", "true"),
    ],
)
def test_batch_variables(kernel, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert interactive(monkeypatch, kernel) is False


def test_kaggle_interactive_session_is_interactive(kernel, monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert interactive(monkeypatch, kernel) is True


def test_papermill_imported_means_batch(kernel, monkeypatch):
    monkeypatch.setitem(sys.modules, "papermill", types.ModuleType("papermill"))
    assert interactive(monkeypatch, kernel) is False


def test_force_interactive_overrides_batch_markers(kernel, monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "x")
    monkeypatch.setenv("TUNIXRT_NONINTERACTIVE", "0")
    assert env.is_interactive(kernel) is True


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/bin/python3", "/usr/local/bin/jupyter-nbconvert", "--execute", "a.ipynb"],
        ["/usr/local/bin/jupyter", "nbconvert", "--to", "notebook", "--execute"],
        ["/usr/bin/python3", "/usr/local/bin/jupyter", "execute", "a.ipynb"],
        ["/usr/local/bin/jupyter-execute", "a.ipynb"],
        ["/usr/bin/python3", "-m", "papermill", "in.ipynb", "out.ipynb"],
        ["/venv/bin/papermill", "in.ipynb", "out.ipynb"],
        ["/venv/bin/python", "/venv/bin/pytest", "--nbval", "nb/"],
        ["/venv/bin/python3.11", "-m", "pytest", "--nbval-lax"],
        ["/venv/bin/py.test", "--nbval"],
    ],
)
def test_kernel_started_by_notebook_executor_is_batch(tmp_path, monkeypatch, argv):
    use_shell(monkeypatch, ZMQInteractiveShell())
    parent_cmdline(tmp_path, *argv)
    assert interactive(monkeypatch, tmp_path) is False


@pytest.mark.parametrize(
    "argv",
    [
        ["/home/me/pytest-demo/.venv/bin/python", "/home/me/pytest-demo/.venv/bin/jupyter-lab"],
        ["/usr/local/bin/jupyter", "lab", "pytest.ipynb"],
        ["/usr/bin/node", "/vscode/server/out/bootstrap-fork", "--type=extensionHost"],
        ["/usr/local/bin/jupyter-notebook", "--no-browser"],
    ],
)
def test_kernel_started_by_a_ui_is_interactive(tmp_path, monkeypatch, argv):
    use_shell(monkeypatch, ZMQInteractiveShell())
    parent_cmdline(tmp_path, *argv)
    assert interactive(monkeypatch, tmp_path) is True


def test_parent_not_checked_for_terminal_ipython(tmp_path, monkeypatch):
    use_shell(monkeypatch, TerminalInteractiveShell())
    parent_cmdline(tmp_path, "/venv/bin/pytest")
    assert interactive(monkeypatch, tmp_path) is True


def test_plain_script_is_batch_but_python_dash_i_is_not(tmp_path, monkeypatch):
    no_ipython(monkeypatch)
    monkeypatch.delattr(sys, "ps1", raising=False)
    assert interactive(monkeypatch, tmp_path) is False
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    assert interactive(monkeypatch, tmp_path) is True


def test_real_nbconvert_kernel_is_jupyter_and_batch(tmp_path):
    """A real kernel run by ``jupyter nbconvert --execute`` (no pytest variables passed on)."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbconvert")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "from tunixrt_jupyter import env\n"
        "print(env.detect_frontend(), env.is_interactive())"
    ))
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    child_env = {k: v for k, v in os.environ.items()
                 if k not in _ENV_VARS and not k.startswith(("PYTEST_", "PAPERMILL_"))}
    child_env["PYTHONPATH"] = str(REPO)
    jupyter = Path(sys.executable).with_name("jupyter")
    subprocess.run(
        [str(jupyter), "nbconvert", "--to", "notebook", "--execute", "--inplace", str(path)],
        env=child_env, check=True, capture_output=True, timeout=180,
    )
    cell = nbformat.read(path, as_version=4).cells[0]
    assert cell.outputs[0]["text"].split() == ["jupyter", "False"]


# ---------------------------------------------------------------------- widgets


def test_widgets_prefer_anywidget(monkeypatch):
    monkeypatch.setitem(sys.modules, "anywidget", types.ModuleType("anywidget"))
    sys.modules["anywidget"].__spec__ = types.SimpleNamespace(name="anywidget")
    info = env.widget_support("jupyter")
    assert info["anywidget"] is True
    assert info["renderer"] == "anywidget"
    assert info["ipywidgets"]  # installed in the dev environment


def test_kaggle_without_anywidget_uses_ipywidgets(monkeypatch):
    monkeypatch.setitem(sys.modules, "anywidget", None)  # find_spec -> None: not importable
    info = env.widget_support("kaggle")
    assert info["anywidget"] is False
    assert info["renderer"] == "ipywidgets"


def test_vscode_keeps_anywidget(monkeypatch):
    """VS Code offline cannot fetch widget JS from a CDN; anywidget's ESM is inline."""
    monkeypatch.setitem(sys.modules, "anywidget", types.ModuleType("anywidget"))
    sys.modules["anywidget"].__spec__ = types.SimpleNamespace(name="anywidget")
    assert env.widget_support("vscode")["renderer"] == "anywidget"


def test_no_ipywidgets_means_text(monkeypatch):
    real = env._version
    monkeypatch.setattr(env, "_version", lambda d: None if d == "ipywidgets" else real(d))
    info = env.widget_support("colab")
    assert info["ipywidgets"] is None
    assert info["renderer"] == "text"


@pytest.mark.parametrize("frontend", ["terminal", "ipython"])
def test_no_widgets_outside_a_notebook(frontend):
    assert env.widget_support(frontend)["renderer"] == "text"


def test_renderer_override(monkeypatch):
    monkeypatch.setenv("TUNIXRT_RENDERER", "text")
    assert env.widget_support("jupyter")["renderer"] == "text"
    monkeypatch.setenv("TUNIXRT_RENDERER", "IPyWidgets")
    assert env.widget_support("jupyter")["renderer"] == "ipywidgets"


def test_widget_support_reports_versions():
    info = env.widget_support("jupyter")
    assert set(info) >= {"anywidget", "ipywidgets", "ipykernel", "renderer", "reason"}


# ------------------------------------------------------------------------- auth


def _userdata(monkeypatch: pytest.MonkeyPatch, secrets: dict[str, str]) -> list[str]:
    """Stub ``google.colab.userdata``; returns the list of names it was asked for."""

    class SecretNotFoundError(Exception):
        pass

    asked: list[str] = []

    def get(name: str) -> str:
        asked.append(name)
        if name == "KAGGLE_KEY":
            raise RuntimeError("NotebookAccessError: notebook has no access")
        if name not in secrets:
            raise SecretNotFoundError(name)
        return secrets[name]

    module = types.ModuleType("google.colab.userdata")
    module.get = get
    module.SecretNotFoundError = SecretNotFoundError
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "google.colab.userdata", module)
    return asked


def test_auth_env_from_environment(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "ada")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    monkeypatch.setenv("HF_TOKEN", "")  # empty means unset
    monkeypatch.setenv("UNRELATED_SECRET", "no")
    assert env.auth_env() == {"KAGGLE_USERNAME": "ada", "KAGGLE_KEY": "k"}


def test_hf_token_names_fill_each_other(monkeypatch):
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "hf_old")
    assert env.auth_env() == {"HF_TOKEN": "hf_old", "HUGGING_FACE_HUB_TOKEN": "hf_old"}


def test_colab_secrets_only_when_asked(monkeypatch):
    asked = _userdata(monkeypatch, {"HF_TOKEN": "hf_secret"})
    assert env.auth_env() == {}
    assert asked == []


def test_colab_secrets_fill_gaps_and_errors_are_swallowed(monkeypatch):
    asked = _userdata(monkeypatch, {"HF_TOKEN": "hf_secret", "KAGGLE_USERNAME": "colab"})
    monkeypatch.setenv("KAGGLE_USERNAME", "from_env")
    got = env.auth_env(include_colab_secrets=True)
    assert got == {
        "HF_TOKEN": "hf_secret", "HUGGING_FACE_HUB_TOKEN": "hf_secret",
        "KAGGLE_USERNAME": "from_env",
    }
    assert "KAGGLE_USERNAME" not in asked  # the environment wins, no prompt needed
    assert "KAGGLE_KEY" in asked


def test_colab_secrets_outside_colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab.userdata", None)  # import -> ImportError
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert env.auth_env(include_colab_secrets=True)["HF_TOKEN"] == "hf_env"


# -------------------------------------------------------------------- lockfile


def holder(proc: Path, pid: int, *targets: str) -> None:
    fd = proc / str(pid) / "fd"
    fd.mkdir(parents=True)
    for i, target in enumerate(targets):
        (fd / str(i)).symlink_to(target)


def test_lockfile_stale_when_nobody_holds_tpu(tmp_path):
    lock, proc = tmp_path / "libtpu_lockfile", tmp_path / "proc"
    lock.write_text("")
    holder(proc, 100, "/dev/null", "/dev/pts/0", "socket:[1234]")
    (proc / "self").mkdir()  # non-pid entries are skipped
    assert tpu.tpu_holders(proc) == []
    assert tpu.stale_tpu_lockfile(lock, proc) is True
    assert tpu.remove_stale_tpu_lockfile(lock, proc) is True
    assert not lock.exists()
    assert tpu.remove_stale_tpu_lockfile(lock, proc) is False


@pytest.mark.parametrize("device", ["/dev/accel0", "/dev/vfio/0", "/dev/vfio/vfio"])
def test_lockfile_kept_while_a_process_holds_the_tpu(tmp_path, device):
    lock, proc = tmp_path / "libtpu_lockfile", tmp_path / "proc"
    lock.write_text("")
    holder(proc, 100, "/dev/null")
    holder(proc, 4242, "/dev/null", device)
    assert tpu.tpu_holders(proc) == [4242]
    assert tpu.stale_tpu_lockfile(lock, proc) is False
    assert tpu.remove_stale_tpu_lockfile(lock, proc) is False
    assert lock.exists()


def test_no_lockfile_is_not_stale(tmp_path):
    assert tpu.stale_tpu_lockfile(tmp_path / "missing", tmp_path / "proc") is False
    assert env.remove_stale_tpu_lockfile(tmp_path / "missing", tmp_path / "proc") is False


def test_real_proc_scan_does_not_crash():
    assert isinstance(tpu.tpu_holders(), list)


# ---------------------------------------------------------------------- report


def test_report_text_and_html(host, monkeypatch):
    pci(host.sys, "0000:00:04.0", "0x1ae0", "0x0063", "0x120000")
    pci(host.sys, "0000:00:05.0", "0x1ae0", "0x0063", "0x120000")
    use_shell(monkeypatch, ZMQInteractiveShell())
    monkeypatch.setenv("JAX_PLATFORMS", "tpu,cpu")
    r = env.report(host.sys, host.dev, host.proc)
    assert (r.frontend, r.accelerator, r.chips, r.tpu_version) == ("jupyter", "tpu", 2, "v5e")
    assert r.versions["jax"]  # installed here; read from metadata
    assert "tunix" in r.versions
    assert r.widgets["renderer"] in env.RENDERERS
    text = str(r)
    assert text.splitlines()[0] == "tunixrt environment"
    assert "tpu (2 chips, v5e)" in text
    assert "JAX_PLATFORMS" in text
    html_out = r._repr_html_()
    assert html_out.startswith("<table") and "tpu (2 chips, v5e)" in html_out


def test_report_html_escapes_values():
    r = env.EnvReport(frontend="<script>", accelerator="cpu", chips=0, tpu_version=None,
                      python="3.11", platform="Linux x86_64")
    assert "<script>" not in r._repr_html_()
    assert "&lt;script&gt;" in r._repr_html_()
    assert "not installed: jax, tunix" in str(r)


def test_import_and_report_stay_light():
    """A fresh interpreter: importing env and building a report imports no heavy stack."""
    code = (
        "import json, sys\n"
        "import tunixrt_jupyter.env as env\n"
        "after_import = [m for m in ('jax', 'ipywidgets', 'anywidget') if m in sys.modules]\n"
        "r = env.report()\n"
        "str(r); r._repr_html_()\n"
        "heavy = ('jax', 'jaxlib', 'ipywidgets', 'anywidget', 'IPython', 'tunix', 'duckdb')\n"
        "after_report = [m for m in heavy if m in sys.modules]\n"
        "print(json.dumps([after_import, after_report, r.frontend]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)}, check=True,
    )
    after_import, after_report, frontend = json.loads(out.stdout.strip().splitlines()[-1])
    assert after_import == []
    assert after_report == []
    assert frontend == "terminal"
