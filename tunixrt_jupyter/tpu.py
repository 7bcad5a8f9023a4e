"""TPU facts read from the operating system, never from JAX.

Asking JAX "is there a TPU?" initialises libtpu, and libtpu lets exactly one process own
the chips. If the notebook kernel did that, the training subprocess could not start. So
everything here reads sysfs (``/sys/bus/pci/devices``) and procfs (``/proc/*/fd``) instead,
and every root path is a parameter so tests can point it at a fake tree.

The PCI ids mirror ``jax._src.hardware_utils`` (copied, not imported: importing it imports
jax). Google's vendor id 0x1ae0 alone is not enough: gVNIC network cards and Google NVMe
disks on every GCE VM (Colab and Kaggle GPU machines included) carry it too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

GOOGLE_PCI_VENDOR = "0x1ae0"

#: PCI device id -> TPU generation (from jax._src.hardware_utils).
TPU_PCI_DEVICE_IDS: dict[str, str] = {
    "0x0027": "v2/v3",
    "0x0056": "plc",
    "0x005e": "v4",
    "0x0062": "v5p",
    "0x0063": "v5e",
    "0x006f": "v6e",
    "0x0076": "tpu7x",
}

#: PCI class prefix "processing accelerator": lets a TPU generation newer than the table
#: above still count, while gVNIC (0x02...) and NVMe (0x01...) never do.
_ACCELERATOR_CLASS_PREFIX = "0x12"

DEFAULT_LOCKFILE = "/tmp/libtpu_lockfile"


@dataclass(frozen=True)
class TpuChip:
    """One TPU chip seen on the PCI bus."""

    address: str
    device_id: str
    version: str


def _read(path: Path) -> str:
    try:
        return path.read_text().strip().lower()
    except OSError:
        return ""


def tpu_chips(sysfs_root: str | os.PathLike[str] = "/sys") -> list[TpuChip]:
    """The TPU chips on this host's PCI bus, sorted by PCI address.

    Reading sysfs costs microseconds and starts nothing, unlike ``jax.devices()``.
    """
    devices = Path(sysfs_root) / "bus" / "pci" / "devices"
    try:
        entries = sorted(devices.iterdir())
    except OSError:
        return []
    chips = []
    for entry in entries:
        if _read(entry / "vendor") != GOOGLE_PCI_VENDOR:
            continue
        device_id = _read(entry / "device")
        version = TPU_PCI_DEVICE_IDS.get(device_id)
        if version is None and _read(entry / "class").startswith(_ACCELERATOR_CLASS_PREFIX):
            version = "unknown"
        if version is not None:
            chips.append(TpuChip(address=entry.name, device_id=device_id, version=version))
    return chips


def tpu_chip_count(sysfs_root: str | os.PathLike[str] = "/sys") -> int:
    """Number of TPU chips (Google 0x1ae0 PCI devices that are TPUs) on this host."""
    return len(tpu_chips(sysfs_root))


def tpu_version(sysfs_root: str | os.PathLike[str] = "/sys") -> str | None:
    """TPU generation of the first chip ("v4", "v5e", ...), or None without a TPU."""
    chips = tpu_chips(sysfs_root)
    return chips[0].version if chips else None


def _is_tpu_device_path(target: str) -> bool:
    """``/dev/accelN`` (v2-v4 driver) or ``/dev/vfio/...`` (v5e and later)."""
    return target.startswith("/dev/accel") or target.startswith("/dev/vfio/")


def tpu_holders(proc_root: str | os.PathLike[str] = "/proc") -> list[int]:
    """Pids whose open file descriptors point at a TPU device node.

    This is the check libtpu itself makes before refusing to start. Processes whose
    ``fd`` folder we may not read (another user's) are skipped, as libtpu skips them:
    notebook machines run everything as one user.
    """
    root = Path(proc_root)
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    holders = []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if _is_tpu_device_path(target):
                holders.append(int(entry.name))
                break
    return sorted(holders)


def stale_tpu_lockfile(
    path: str | os.PathLike[str] = DEFAULT_LOCKFILE,
    proc_root: str | os.PathLike[str] = "/proc",
) -> bool:
    """True when libtpu's lockfile exists but no process holds the TPU.

    libtpu removes the file on a clean exit; a killed or crashed run leaves it behind and
    every later process then fails with "TPU is already in use". A lockfile while some
    process still has the device open is *not* stale: that process really owns the TPU.
    """
    if not os.path.lexists(path):
        return False
    return not tpu_holders(proc_root)


def remove_stale_tpu_lockfile(
    path: str | os.PathLike[str] = DEFAULT_LOCKFILE,
    proc_root: str | os.PathLike[str] = "/proc",
) -> bool:
    """Delete libtpu's lockfile if it is stale; return whether a file was removed.

    Never removes the file while any process holds the TPU device, so it cannot break a
    live run (or the kernel, if the kernel initialised JAX on the TPU).
    """
    if not stale_tpu_lockfile(path, proc_root):
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
