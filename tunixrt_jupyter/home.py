"""Where tunixrt keeps its data: ``$TUNIXRT_HOME`` (default ``./.tunixrt``).

Everything for a run lives in its folder under ``runs/``; the DuckDB catalog beside
it is a derived index that can always be rebuilt from those folders.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "TUNIXRT_HOME"


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, root: str | os.PathLike | None = None) -> Home:
        chosen = root or os.environ.get(ENV_VAR) or ".tunixrt"
        return cls(Path(chosen).expanduser().resolve())

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def catalog_path(self) -> Path:
        return self.root / "history.duckdb"

    @property
    def slots_dir(self) -> Path:
        return self.root / "slots"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def ensure(self) -> Home:
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        return self

    def run_ids(self) -> list[str]:
        try:
            return sorted(p.name for p in self.runs_dir.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []

    def find_run(self, prefix: str) -> Path:
        """A run folder from its id or a unique prefix / suffix of it (short ids)."""
        exact = self.run_dir(prefix)
        if exact.is_dir():
            return exact
        matches = [r for r in self.run_ids() if r.startswith(prefix) or r.endswith(prefix)]
        if len(matches) == 1:
            return self.run_dir(matches[0])
        if not matches:
            raise KeyError(
                f"no run {prefix!r} under {self.runs_dir}; list runs with `tunixrt runs`"
            )
        raise KeyError(
            f"run id {prefix!r} is ambiguous ({len(matches)} runs match); give more characters"
        )


def new_run_id() -> str:
    """``YYYYMMDD-HHMMSS-xxxxxx``: sorts by creation time, unique across processes."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
