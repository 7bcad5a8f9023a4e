"""Which tunixrt home the server extension serves.

Default: ``$TUNIXRT_HOME`` when the server was started with it, else ``<root_dir>/.tunixrt``
(the home of notebooks at the top of the file browser: a kernel's working directory is its
notebook's folder, and the default home is ``./.tunixrt`` relative to it).

Notebooks in subfolders keep their runs in their own ``<subfolder>/.tunixrt``: every
endpoint takes ``?home=<path relative to root_dir>`` (the home itself, or the folder that
holds its ``.tunixrt``). An absolute ``home`` is accepted too (a run widget knows its
kernel's absolute home, not the server's root): inside ``root_dir`` always, outside it only
when it is an existing tunixrt home (it has a ``runs/`` folder). Anything else is refused.
(Whoever passes the server's authentication can run code in a kernel anyway; the check
keeps the API from being pointed at arbitrary folders by mistake.)
"""

from __future__ import annotations

import os
from pathlib import Path

from ..home import ENV_VAR, Home

HOME_DIRNAME = ".tunixrt"
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", ".git", ".venv", "venv"})
MAX_SCAN_DIRS = 4000


class HomeError(ValueError):
    """A ``home`` argument the server refuses (outside its root)."""


class HomeResolver:
    def __init__(self, root_dir: str | os.PathLike, env_home: str | None = None):
        self.root_dir = Path(root_dir).expanduser().resolve()
        env_home = env_home if env_home is not None else os.environ.get(ENV_VAR)
        self.default = Home.resolve(env_home) if env_home else Home(self.root_dir / HOME_DIRNAME)

    def resolve(self, arg: str | None = None) -> Home:
        if not arg:
            return self.default
        path = Path(arg).expanduser()
        cand = (path if path.is_absolute() else self.root_dir / path).resolve()
        if cand == self.default.root:
            return self.default
        if not cand.is_relative_to(self.root_dir) and not (
                path.is_absolute() and (cand / "runs").is_dir()):
            raise HomeError(f"home {arg!r} is outside the server's root directory "
                            "and is not a tunixrt home")
        if not (cand / "runs").is_dir() and (cand / HOME_DIRNAME).is_dir():
            cand = cand / HOME_DIRNAME
        return Home(cand)

    def label(self, home: Home) -> str:
        """How the UI names a home: relative to root_dir when inside it."""
        try:
            rel = home.root.relative_to(self.root_dir).as_posix()
        except ValueError:
            return str(home.root)
        return rel or "."

    def discover(self, max_depth: int = 3) -> list[Home]:
        """The default home plus every ``.tunixrt`` home with runs under root_dir (shallow)."""
        found: list[Home] = []
        seen = {self.default.root}
        budget = MAX_SCAN_DIRS
        stack: list[tuple[Path, int]] = [(self.root_dir, 0)]
        while stack and budget > 0:
            folder, depth = stack.pop()
            budget -= 1
            try:
                children = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in children:
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                path = Path(entry.path)
                if entry.name == HOME_DIRNAME:
                    root = path.resolve()
                    if root not in seen and (path / "runs").is_dir():
                        seen.add(root)
                        found.append(Home(root))
                elif (depth < max_depth and not entry.name.startswith(".")
                      and entry.name not in SKIP_DIRS):
                    stack.append((path, depth + 1))
        return [self.default, *sorted(found, key=lambda h: h.root)]
