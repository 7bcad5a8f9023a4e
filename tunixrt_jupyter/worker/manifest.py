"""``manifest.yaml``: what a run is (or would be) in Tunix terms.

Written by a dry-run (so the user can check the plan before spending accelerator time)
and again at the end of a real run with its results. Versions come from package
metadata, never from importing JAX or Tunix.
"""

from __future__ import annotations

import os
import platform as _platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from ..config import RunConfig
from ..events import EventWriter

MANIFEST_FILE = "manifest.yaml"
PACKAGES = ("tunixrt-jupyter", "google-tunix", "jax", "jaxlib", "flax", "optax",
            "orbax-checkpoint", "qwix", "transformers")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": _platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def model_summary(cfg: RunConfig) -> dict[str, Any]:
    m = cfg.model
    out: dict[str, Any] = {"family": m.family, "id": m.id, "path": m.path, "source": m.source,
                           "dtype": m.dtype, "lora": dict(vars(m.lora))}
    if m.family == "tiny":
        from ..recipes.models import TINY_SHAPE

        out["tunix_model"] = "tunix.models.llama3.Llama3 (random init)"
        out["shape"] = dict(TINY_SHAPE)
    return out


def write_manifest(run_dir: Path, cfg: RunConfig, writer: EventWriter, *,
                   announce: bool = True, **sections: Any) -> Path:
    """Write the manifest atomically; ``announce`` adds the ``artifact`` event (once per run:
    a real run rewrites the same file with its results at the end)."""
    doc: dict[str, Any] = {
        "manifest_version": 1,
        "run_id": run_dir.name,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": cfg.run.mode,
        "model": model_summary(cfg),
        **sections,
        "versions": versions(),
        "config": cfg.to_dict(),
    }
    path = run_dir / MANIFEST_FILE
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, path)
    if announce:
        writer.emit("artifact", name=MANIFEST_FILE, path=str(path), kind="manifest",
                    bytes=path.stat().st_size)
    return path
