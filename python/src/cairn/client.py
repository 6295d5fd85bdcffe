"""`cairn.Client`: Cairn's native API (`/api/cairn/v1`) with explicit arguments — lineage
registration and questions, predictions, the audit log. The fluent helpers (`cairn.log_dataset`)
and the MLflow plugins sit on top of it; it sits on `Transport`."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from cairn._config import resolve
from cairn._exceptions import ConnectionFailed
from cairn._transport import Transport
from cairn.digest import dataset_digest

API = "/api/cairn/v1"
EDGE_KINDS = ("used", "was_generated_by", "was_derived_from", "served", "was_informed_by")


def node_path(ref: str) -> str:
    """`kind:key` as the `{kind}/{key}` path of the node routes (the key percent-encoded)."""
    kind, sep, key = ref.partition(":")
    if not sep or not key:
        raise ValueError(f"a node reference is kind:key, got {ref!r}")
    return f"{API}/lineage/nodes/{quote(kind, safe='')}/{quote(key, safe='@+')}"


class Client:
    """A client of one Cairn server.

    `url` and `token` default to `CAIRN_URL` or `MLFLOW_TRACKING_URI`, and
    `MLFLOW_TRACKING_TOKEN` (or `MLFLOW_TRACKING_USERNAME`/`PASSWORD`), as for `mlflow`.
    Failed requests are retried with back-off on 408, 429, 5xx and connection errors
    (`max_retries`), then raise a `cairn.CairnError` subclass chosen by status code.

    Registering nodes and edges and deploying go through the offline spool: when the server
    cannot be reached they are journaled and the answer says `"spooled": True`. A slice needs
    the server (it computes the slice's digest), and so do all questions.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        self.settings = resolve(url, token, timeout=timeout, max_retries=max_retries)
        self.transport = Transport(self.settings)

    @property
    def url(self) -> str:
        return self.settings.url

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, **params: Any) -> Any:
        return self.transport.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def _send(self, method: str, path: str, body: dict[str, Any], offline: Any = None) -> Any:
        """Sends a write. With `offline` (the answer to give instead), the write goes through the
        offline spool: journaled when the server cannot be reached (or `CAIRN_OFFLINE=1`), in
        order with the mlflow client's writes to the same server, and replayed with them."""
        body = {k: v for k, v in body.items() if v is not None}
        if offline is None:
            return self.transport.request(method, path, json=body)
        from cairn.spool.sync import Unreachable, spool_for

        def online() -> Any:
            try:
                return self.transport.request(method, path, json=body)
            except ConnectionFailed as e:
                raise Unreachable(str(e)) from e

        return spool_for(self.url).write(f"{method} {path}", body, online, lambda: offline)

    # ---- the server ------------------------------------------------------------------------

    def server_version(self) -> dict[str, Any] | None:
        """Cairn's `GET /version` (`{"version", "mlflow_api"}`), or `None` when the server is
        not a Cairn server (MLflow answers plain text there)."""
        result = self._get("/version")
        return result if isinstance(result, dict) and "mlflow_api" in result else None

    # ---- registration ----------------------------------------------------------------------

    def register_node(
        self,
        ref: str,
        *,
        label: str | None = None,
        digest: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Registers a lineage node (`kind:key`). Registering it again with the same content is
        a no-op; with other content the server refuses (`Conflict`): lineage never changes."""
        body = {"label": label, "digest": digest, "attributes": attributes}
        spooled = {"node": {"id": ref, "label": label, "digest": digest, "attributes": attributes, "spooled": True}}
        node: dict[str, Any] = self._send("PUT", node_path(ref), body, offline=spooled)["node"]
        return node

    def get_node(self, ref: str, *, as_of: str | int | None = None) -> dict[str, Any]:
        node: dict[str, Any] = self._get(node_path(ref), as_of=as_of)["node"]
        return node

    def register_dataset(
        self,
        name: str,
        path: str | os.PathLike[str] | None = None,
        *,
        digest: str | None = None,
        version: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Registers a dataset version. The digest is computed by streaming `path` (a file, or a
        folder such as a partitioned Parquet or CSV dataset) unless given; the version defaults
        to the digest, so the node is `dataset:<name>@<digest>` as for `mlflow.log_input`."""
        if digest is None:
            if path is None:
                raise ValueError("register_dataset needs a path to digest or a digest")
            digest = dataset_digest(path)
        attrs = dict(attributes or {})
        if path is not None:
            attrs.setdefault("source", os.fspath(path))
        return self.register_node(f"dataset:{name}@{version or digest}", label=name, digest=digest, attributes=attrs)

    def register_slice(self, dataset: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Registers a slice of a dataset version (`partitions`, `row_range`, `filter`,
        `sample_fraction`, `seed`); the server computes its digest."""
        node: dict[str, Any] = self._send("POST", f"{API}/lineage/slices", {"dataset": dataset, "spec": spec})["node"]
        return node

    def add_edge(self, source: str, kind: str, target: str) -> dict[str, Any]:
        """Records `source --kind--> target` (`used`, `was_generated_by`, `was_derived_from`,
        `served`, `was_informed_by`); edges that would close a cycle are refused."""
        if kind not in EDGE_KINDS:
            raise ValueError(f"edge kind must be one of {', '.join(EDGE_KINDS)}, got {kind!r}")
        body = {"source": source, "kind": kind, "target": target}
        edge: dict[str, Any] = self._send(
            "POST", f"{API}/lineage/edges", body, offline={"edge": {**body, "spooled": True}}
        )["edge"]
        return edge

    def derive(self, derived: str, source: str) -> dict[str, Any]:
        """Records that `derived` was derived from `source` (a cleaned dataset from a raw one)."""
        return self.add_edge(derived, "was_derived_from", source)

    def deploy(self, deployment: str, model_version: str, *, at: str | int | None = None) -> dict[str, Any]:
        """The deployment serves `model_version` (`name/3`) from `at` (default now)."""
        body = {"model_version": model_version, "at": at}
        edge: dict[str, Any] = self._send(
            "POST", f"{API}/deployments/{quote(deployment, safe='')}", body, offline={"edge": {**body, "spooled": True}}
        )["edge"]
        return edge

    def log_predictions(self, predictions: list[dict[str, Any]], *, strict: bool = False) -> dict[str, Any]:
        """Stores a batch of at most 10,000 predictions atomically."""
        result: dict[str, Any] = self._send(
            "POST", f"{API}/predictions", {"predictions": predictions, "strict": strict}
        )
        return result

    # ---- questions -------------------------------------------------------------------------

    def upstream(self, node: str, *, depth: int | None = None, as_of: str | int | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._get(f"{API}/lineage/upstream", node=node, depth=depth, as_of=as_of)
        return result

    def downstream(self, node: str, *, depth: int | None = None, as_of: str | int | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._get(f"{API}/lineage/downstream", node=node, depth=depth, as_of=as_of)
        return result

    def diff(
        self, left: str, right: str, *, depth: int | None = None, as_of: str | int | None = None
    ) -> dict[str, Any]:
        """What the upstreams of two nodes share and where they differ. Beside the server's
        answer, `package_changes` lists package differences between the environments that
        differ (`numpy 2.1.0 → 2.2.1`), read from their registered nodes."""
        result: dict[str, Any] = self._get(
            f"{API}/lineage/diff", left=left, right=right, depth=depth, as_of=as_of
        )
        left_envs = [n for n in result.get("only_left", []) if n.startswith("env:")]
        right_envs = [n for n in result.get("only_right", []) if n.startswith("env:")]
        changes: list[str] = []
        if len(left_envs) == 1 and len(right_envs) == 1:
            changes = package_changes(self._packages(left_envs[0]), self._packages(right_envs[0]))
        result["package_changes"] = changes
        return result

    def _packages(self, env_ref: str) -> dict[str, str]:
        packages = self.get_node(env_ref).get("attributes", {}).get("packages", {})
        return {str(k): str(v) for k, v in packages.items()} if isinstance(packages, dict) else {}

    def trace(self, prediction_id: str, *, as_of: str | int | None = None) -> dict[str, Any]:
        """A prediction's chain back to its deployment, model version, run, data, code and
        environment."""
        result: dict[str, Any] = self._get(f"{API}/predictions/{quote(prediction_id, safe='')}/trace", as_of=as_of)
        return result

    def audit_events(self, **params: Any) -> dict[str, Any]:
        """A page of the audit log (see `GET /api/cairn/v1/audit/events` for the filters)."""
        result: dict[str, Any] = self._get(f"{API}/audit/events", **params)
        return result

    def audit_verify(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get(f"{API}/audit/verify")
        return result


def package_changes(left: dict[str, str], right: dict[str, str]) -> list[str]:
    """Human-readable package differences: `numpy 2.1.0 → 2.2.1`, `+ polars 1.2.0`,
    `- pandas 2.2.3`."""
    out = []
    for name in sorted(set(left) | set(right)):
        a, b = left.get(name), right.get(name)
        if a == b:
            continue
        if a is None:
            out.append(f"+ {name} {b}")
        elif b is None:
            out.append(f"- {name} {a}")
        else:
            out.append(f"{name} {a} → {b}")
    return out
