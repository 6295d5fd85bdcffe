"""What the MLflow plugins share about the offline spool: the short-retry write, telling a
server that is away from one that refused, and the one error for writes that cannot be spooled."""

from __future__ import annotations

import json
import os
from typing import Any

import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE
from mlflow.utils.proto_json_utils import parse_dict
from mlflow.utils.rest_utils import MlflowHostCreds, http_request, verify_rest_response

from cairn.spool.sync import Unreachable

# Short, so that a dead server costs a training loop about a second, not MLflow's minutes of
# retries; the spool retries later anyway.
WRITE_RETRIES = 2
WRITE_TIMEOUT_SECS = float(os.environ.get("CAIRN_WRITE_TIMEOUT", "30"))

# Why each write the spool cannot hold needs the server, for the error message.
WHY = {
    "DeleteLoggedModel": "a delete depends on what the server holds",
    "DeleteRegisteredModel": "a delete depends on what the server holds",
    "DeleteModelVersion": "a delete depends on what the server holds",
    "DeleteRegisteredModelTag": "a delete depends on what the server holds",
    "DeleteModelVersionTag": "a delete depends on what the server holds",
    "DeleteRegisteredModelAlias": "a delete depends on what the server holds",
    "RenameRegisteredModel": "a rename depends on what the server holds",
}


def cannot_spool(api: Any, url: str, journal: Any) -> MlflowException:
    """The error for a write that needs the server while it is away."""
    name = getattr(api, "__name__", str(api))
    why = WHY.get(name, "it needs an answer only the server can give")
    return MlflowException(
        f"Cairn: {url} is unreachable, and {name} cannot be spooled: {why}. Runs, metrics, params, "
        "tags, artifacts, logged models (log_model) and model-registry writes (registered models, "
        f"model versions, aliases, tags, descriptions, stages) are being spooled in {journal}. Once "
        "the server is back, run "
        "`cairn-sync`, then run this step again.",
        error_code=TEMPORARILY_UNAVAILABLE,
    )


def is_connection_failure(error: BaseException) -> bool:
    """Whether an `MlflowException` from MLflow's `http_request` means the server did not answer
    (connection refused, reset, timed out, retries on 5xx exhausted), not that it refused."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError)):
            return True
        if type(seen).__name__ in ("MaxRetryError", "NewConnectionError", "ProtocolError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def send_json(host_creds: MlflowHostCreds, path: str, method: str, body: dict[str, Any], proto: Any) -> Any:
    """One MLflow REST call with short retries; `Unreachable` when the server did not answer."""
    kwargs: dict[str, Any] = {"params": body} if method == "GET" else {"json": body}
    try:
        response = http_request(
            host_creds,
            path,
            method,
            max_retries=WRITE_RETRIES,
            backoff_factor=0.2,
            backoff_jitter=0.1,
            timeout=WRITE_TIMEOUT_SECS,
            raise_on_status=False,
            **kwargs,
        )
    except MlflowException as e:  # connection refused, reset, timed out
        raise Unreachable(str(e)) from e
    if response.status_code >= 500 or response.status_code == 429:
        raise Unreachable(f"HTTP {response.status_code}")
    response = verify_rest_response(response, path)
    parse_dict(js_dict=json.loads(response.text or "{}"), message=proto)
    return proto
