"""The run history: a DuckDB catalog derived from the run folders (rebuildable at any time).

``Catalog(home)`` is the entry point; ``lock``, ``schema``, ``ingest`` and ``queries`` are its
parts. Importing this package imports DuckDB, so the rest of tunixrt imports it lazily.
"""

from . import sessions
from .catalog import Catalog
from .ingest import IngestStats
from .lock import CatalogBusy, CatalogLock
from .schema import CURRENT_VERSION, SchemaError, migrate

__all__ = ["CURRENT_VERSION", "Catalog", "CatalogBusy", "CatalogLock", "IngestStats",
           "SchemaError", "migrate", "sessions"]
