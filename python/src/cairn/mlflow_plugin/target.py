"""The Cairn server behind MLflow's tracking URI, if it is one, asked once per process."""

from __future__ import annotations

import threading

from cairn._exceptions import ConnectionFailed
from cairn.client import Client

_lock = threading.Lock()
_clients: dict[str, Client | None] = {}


def tracking_uri() -> str:
    import mlflow

    return str(mlflow.get_tracking_uri())


def cairn_client(uri: str | None = None) -> Client | None:
    """A client of the tracking server when it is a Cairn server, else `None` (a file store, an
    MLflow server). The answer is cached per URI; an unreachable server is asked again later."""
    uri = uri or tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    with _lock:
        if uri in _clients:
            return _clients[uri]
    client = Client(uri, max_retries=1, timeout=5)
    try:
        is_cairn = client.server_version() is not None
    except ConnectionFailed:
        # Unreachable: taken for a Cairn server, not cached, so its writes (lineage nodes) go
        # through the offline spool like the run's; a server that turns out not to be one
        # refuses them on replay, and cairn-sync reports them.
        return client
    with _lock:
        _clients[uri] = client if is_cairn else None
    return _clients[uri]
