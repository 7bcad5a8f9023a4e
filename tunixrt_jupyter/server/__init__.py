"""Jupyter server extension: REST + Server-Sent Events for tunixrt runs.

Enabled by ``jupyter-config/jupyter_server_config.d/tunixrt_jupyter.json`` (installed with
the package), or by hand::

    jupyter server --ServerApp.jpserver_extensions='{"tunixrt_jupyter.server": true}'

Endpoints, under ``{base_url}tunixrt/api/`` (authenticated like every Jupyter API; POSTs
need the XSRF token, which ``ServerConnection.makeRequest`` adds):

- ``GET runs`` -- ``?status=&model=&dataset=&mode=&tags=&name=&since=&until=&sort=&limit=
  &offset=``; ``{"rows": [...], "total": n, "source": "catalog"|"folders", ...}``
- ``GET runs/<id>`` -- state, resolved config, process record
- ``GET runs/<id>/metrics?name=train/loss`` -- metric points
- ``GET runs/<id>/logs?n=200&stream=`` -- the last output lines
- ``POST runs/<id>/cancel`` -- stop the run (never blocks the server); the new status
- ``GET homes`` -- the default home and ``.tunixrt`` homes found under the root dir
- ``GET events`` -- ``text/event-stream`` of run-list changes (the Tunix Runs sidebar)

The home served is ``$TUNIXRT_HOME`` if the server was started with it, else
``<root_dir>/.tunixrt``; every endpoint also takes ``?home=<path relative to root_dir>``
for notebooks in subfolders (whose default home is ``<subfolder>/.tunixrt``), or an
absolute path (inside root_dir, or an existing tunixrt home elsewhere): see ``homes.py``.
"""

from __future__ import annotations

EXTENSION_NAME = "tunixrt_jupyter.server"


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": EXTENSION_NAME}]


def _load_jupyter_server_extension(serverapp) -> None:
    from .handlers import setup_handlers

    homes = setup_handlers(serverapp)
    serverapp.log.info("tunixrt | serving runs of %s at %stunixrt/api/", homes.default.root,
                       serverapp.web_app.settings["base_url"])


# the name jupyter_server < 2 (and notebook 6's serverextension) looked for
load_jupyter_server_extension = _load_jupyter_server_extension


def _jupyter_labextension_paths() -> list[dict]:
    """The prebuilt "Tunix Runs" sidebar (``labextension/`` builds into
    ``tunixrt_jupyter/labextension``), for ``jupyter labextension develop``."""
    return [{"src": "../labextension", "dest": "tunixrt-jupyter"}]
