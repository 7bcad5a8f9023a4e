"""Alias of :mod:`tunixrt_jupyter`, so ``import tunixrt`` and ``%load_ext tunixrt`` work."""

from __future__ import annotations

from typing import Any

import tunixrt_jupyter as _pkg

__version__ = _pkg.__version__
__all__ = _pkg.__all__


def __getattr__(name: str) -> Any:
    return getattr(_pkg, name)


def __dir__() -> list[str]:
    return _pkg.__dir__()


def load_ipython_extension(ipython: Any) -> None:
    _pkg.load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    _pkg.unload_ipython_extension(ipython)
