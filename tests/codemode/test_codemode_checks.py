"""What ``start_code_run`` refuses before anything starts, and ``tunixrt.log`` outside a run."""

from __future__ import annotations

import threading
import warnings

import pytest
from codemode_helpers import code_args

from tunixrt_jupyter.codemode import default_name, start_code_run


def _no_runs(home):
    return home.run_ids() == []


@pytest.mark.parametrize("make", [threading.Lock, lambda: (i for i in range(3))],
                         ids=["lock", "generator"])
def test_unpicklable_input_is_refused_and_nothing_starts(code_home, shell, make):
    shell.user_ns["bad_thing"] = make()
    with pytest.raises(ValueError, match="'bad_thing'.*cannot be pickled"):
        start_code_run("print(bad_thing)\n", code_args(inputs="bad_thing"), shell)
    assert _no_runs(code_home)


def test_missing_input_is_refused_and_nothing_starts(code_home, shell):
    shell.user_ns.pop("not_defined_here", None)
    with pytest.raises(ValueError, match="'not_defined_here' is not defined"):
        start_code_run("pass\n", code_args(inputs="not_defined_here"), shell)
    assert _no_runs(code_home)


def test_bad_cells_and_flags_are_refused(code_home, shell):
    with pytest.raises(ValueError, match=r"does not compile: .*line 2"):
        start_code_run("x = 1\ny = (\n", code_args(), shell)
    with pytest.raises(ValueError, match="--executor subprocess"):
        start_code_run("x = 1\n", code_args(executor="subprocess"), shell)
    with pytest.raises(ValueError, match="--out"):
        start_code_run("x = 1\n", code_args(outputs="x, not-a-name"), shell)
    with pytest.raises(ValueError, match="--keep-kernel needs --executor kernel"):
        start_code_run("x = 1\n", code_args(executor="inline", keep_kernel=True), shell)
    assert _no_runs(code_home)


def test_default_name_is_code_and_the_first_identifier():
    assert default_name("# a comment\nimport jax\n") == "code-jax"
    assert default_name("trainer = make()\n") == "code-trainer"
    assert default_name("\n") == "code"


def test_log_outside_a_run_warns_once_and_writes_nothing(monkeypatch, tmp_path):
    from tunixrt_jupyter import userlog

    monkeypatch.delenv("TUNIXRT_RUN_DIR", raising=False)
    monkeypatch.setattr(userlog, "_warned", False)
    with pytest.warns(UserWarning, match="outside a tunixrt run"):
        userlog.log(step=1, reward=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        userlog.log(step=2, reward=0.25)  # the second call is silent


def test_log_into_a_run_folder_from_the_environment(monkeypatch, tmp_path):
    import tunixrt_jupyter as tunixrt
    from tunixrt_jupyter.events import iter_events

    monkeypatch.setenv("TUNIXRT_RUN_DIR", str(tmp_path))
    tunixrt.log(step=3, reward=0.5)
    tunixrt.log(accuracy=1)
    metrics = [(e["name"], e["value"], e["step"]) for e in iter_events(tmp_path)]
    assert metrics == [("reward", 0.5, 3), ("accuracy", 1.0, None)]
    with pytest.raises(TypeError, match="reward='high' is not a number"):
        tunixrt.log(reward="high")


def test_post_import_hook_runs_once_when_the_module_is_really_imported(tmp_path, monkeypatch):
    import importlib
    import importlib.util
    import sys

    from tunixrt_jupyter.codemode_capture import when_imported

    (tmp_path / "tunixrt_probe_mod.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tunixrt_probe_mod", raising=False)
    seen = []
    when_imported("tunixrt_probe_mod", lambda m: seen.append(m.VALUE))
    assert importlib.util.find_spec("tunixrt_probe_mod") is not None  # a look, no import
    assert seen == []
    module = importlib.import_module("tunixrt_probe_mod")
    assert seen == [1]
    assert module.__loader__.__class__.__name__ == "SourceFileLoader"  # the real loader
    importlib.reload(module)
    assert seen == [1]  # once
    when_imported("tunixrt_probe_mod", lambda m: seen.append(2))  # already imported: now
    assert seen == [1, 2]
