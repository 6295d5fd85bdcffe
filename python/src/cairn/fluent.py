"""Module-level helpers that act on MLflow's active run, the way `mlflow.log_input` does, over
one default `Client` for the tracking server."""

from __future__ import annotations

import os
import threading
from typing import Any

from cairn.client import Client

_lock = threading.Lock()
_default: Client | None = None


def default_client() -> Client:
    """The client of MLflow's tracking URI (or `CAIRN_URL`), made on first use."""
    global _default
    with _lock:
        if _default is None:
            import mlflow

            uri = os.environ.get("CAIRN_URL") or mlflow.get_tracking_uri()
            _default = Client(uri)
        return _default


def log_dataset(
    path: str | os.PathLike[str] | None = None,
    *,
    name: str,
    digest: str | None = None,
    version: str | None = None,
    spec: dict[str, Any] | None = None,
    attributes: dict[str, Any] | None = None,
    run_id: str | None = None,
    client: Client | None = None,
) -> dict[str, Any]:
    """Registers a dataset version (its digest streamed from `path` unless given), the slice
    `spec` of it that the run read if any, and the run's *used* edge to it. Returns
    `{"dataset", "slice", "edge"}` as the server recorded them."""
    import mlflow

    if run_id is None:
        run = mlflow.active_run()
        if run is None:
            raise RuntimeError("log_dataset needs an active run (mlflow.start_run()) or a run_id")
        run_id = run.info.run_id
    client = client or default_client()
    dataset = client.register_dataset(name, path, digest=digest, version=version, attributes=attributes)
    used = dataset["id"]
    slice_node = None
    if spec is not None:
        slice_node = client.register_slice(used, spec)
        used = slice_node["id"]
    edge = client.add_edge(f"run:{run_id}", "used", used)
    return {"dataset": dataset, "slice": slice_node, "edge": edge}
