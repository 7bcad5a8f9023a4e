"""The prebuilt labextension: built output present and found by `jupyter labextension list`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "tunixrt_jupyter" / "labextension"

needs_build = pytest.mark.skipif(
    not (BUILT / "package.json").exists(),
    reason="labextension not built: make labextension (cd labextension && npm install "
           "&& npm run build:prod)")


@needs_build
def test_built_labextension_is_listed(tmp_path):
    meta = json.loads((BUILT / "package.json").read_text())
    source = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert meta["name"] == source["name"] == "tunixrt-jupyter"
    assert (BUILT / meta["jupyterlab"]["_build"]["load"]).is_file()
    links = tmp_path / "labextensions"
    links.mkdir()
    (links / meta["name"]).symlink_to(BUILT, target_is_directory=True)
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "jupyterlab.labextensions", "list"],
                         capture_output=True, text=True, env=env, timeout=120)
    text = out.stdout + out.stderr
    line = next((ln for ln in text.splitlines() if "tunixrt-jupyter" in ln), "")
    assert "enabled" in line and "OK" in line, text


def test_server_extension_points_and_config():
    import tunixrt_jupyter.server as ext

    assert ext._jupyter_server_extension_points() == [{"module": "tunixrt_jupyter.server"}]
    paths = ext._jupyter_labextension_paths()
    src = (Path(ext.__file__).parent / paths[0]["src"]).resolve()
    assert src == BUILT.resolve() and paths[0]["dest"] == "tunixrt-jupyter"
    cfg = json.loads((ROOT / "jupyter-config" / "jupyter_server_config.d"
                      / "tunixrt_jupyter.json").read_text())
    assert cfg == {"ServerApp": {"jpserver_extensions": {"tunixrt_jupyter.server": True}}}
