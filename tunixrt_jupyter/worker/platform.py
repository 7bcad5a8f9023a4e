"""Choosing and verifying the JAX platform of a run.

``JAX_PLATFORMS`` must be set before JAX is imported. After import the worker asks JAX
which backend it really got and fails loudly on a mismatch: libtpu lets one process own
the TPU, and a run that silently fell back to CPU would "train" for hours on the wrong
device. ``auto`` leaves the choice to JAX (whatever accelerator it finds, else CPU).
"""

from __future__ import annotations

import os
from typing import Any

#: run.platform -> JAX_PLATFORMS value ("gpu" is JAX's alias for cuda/rocm).
JAX_PLATFORMS = {"cpu": "cpu", "gpu": "gpu", "tpu": "tpu"}


class PlatformError(RuntimeError):
    """JAX did not start on the platform the run asked for."""


def configure_platform(platform: str) -> None:
    """Set JAX_PLATFORMS for ``platform`` (before JAX is imported); ``auto`` keeps the env."""
    if platform in JAX_PLATFORMS:
        os.environ["JAX_PLATFORMS"] = JAX_PLATFORMS[platform]


def _holder_hint(platform: str) -> str:
    if platform != "tpu":
        return "is the accelerator visible to this process (drivers, CUDA_VISIBLE_DEVICES)?"
    try:
        from ..tpu import tpu_chip_count, tpu_holders

        if not tpu_chip_count():
            return "this machine has no TPU chips on its PCI bus"
        holders = [pid for pid in tpu_holders() if pid != os.getpid()]
    except Exception:  # the hint is best effort; the error itself must still be raised
        holders = []
    who = f" (pids holding it: {', '.join(map(str, holders))})" if holders else ""
    return (f"is another process (e.g. the notebook kernel) holding the TPU{who}? Only one "
            "process may own it: restart that kernel without touching JAX, or use the "
            "inline executor")


def verify_backend(platform: str) -> dict[str, Any]:
    """Initialise JAX and check its backend; returns platform, device kind and count."""
    import jax

    try:
        backend = jax.default_backend()
        devices = jax.devices()
    except RuntimeError as exc:
        if platform == "auto":
            raise
        raise PlatformError(
            f"asked for {platform} but JAX could not initialise it ({exc}): "
            f"{_holder_hint(platform)}"
        ) from exc
    if platform != "auto" and backend != platform:
        raise PlatformError(
            f"asked for {platform} but JAX initialised {backend}: {_holder_hint(platform)}"
        )
    return {"platform": backend, "device_kind": devices[0].device_kind,
            "device_count": len(devices)}
