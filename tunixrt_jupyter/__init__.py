"""tunixrt: launch, watch, stop and remember Tunix training runs from a notebook.

Importing this package is cheap (no jax, tunix, duckdb or widget imports): names are
loaded on first use, so ``%load_ext tunixrt`` costs milliseconds.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "run": "api", "runs": "api", "get": "api", "resume": "api",
    "Run": "handles", "RunList": "handles",
    "RunConfig": "config", "ConfigError": "config", "load_config": "config",
    "log": "userlog",
    "load_ipython_extension": "magics", "unload_ipython_extension": "magics",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tunixrt_jupyter' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
