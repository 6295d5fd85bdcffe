"""The `mlflow.artifact_repository` plugin for the `mlflow-artifacts` scheme: MLflow's own
`MlflowArtifactsRepository`, whose uploads go through the offline spool.

How MLflow picks it: `mlflow.store.artifact.artifact_repository_registry` registers its built-in
repositories by scheme and then calls `register_entrypoints()`, which registers every
`mlflow.artifact_repository` entry point under its name, replacing a built-in of the same
scheme (the registry is a dict). So this class is what `get_artifact_repository` returns for
`mlflow-artifacts:` URIs, the artifact locations of a Cairn server (and of `mlflow server
--serve-artifacts`): `mlflow.log_artifact(s)`, `log_text`, `log_dict`, `log_image`,
`log_figure`, `log_table` and Cairn's capture files all reach `log_artifact` here. `http(s)`
artifact URIs (an experiment whose artifact location is a plain URL) keep MLflow's
`HttpArtifactRepository` and are not spooled: they need not be the tracking server.

- Online, `log_artifact` is one streamed PUT of the file, as MLflow's, with short retries (the
  spool's `WRITE_RETRIES`) instead of MLflow's minutes of back-off; no copy is made. Files
  MLflow would upload in parts (`_should_multipart_upload`) take MLflow's own path.
- When the server is unreachable (or `CAIRN_OFFLINE=1`, or entries wait in the journal), the
  file is copied into the spool's blob folder under its SHA-256 and journaled as an `ARTIFACT`
  entry naming the artifact location, the path in it and the digest; replay PUTs the blob to
  the same place (`upload_blob`), in journal order, so after the run's creation. Files larger
  than `CAIRN_SPOOL_MAX_ARTIFACT_BYTES` (default 4 GiB) are refused with an `MlflowException`.
- Reads are MLflow's and need the server, with one exception: while the spool is journaling,
  `list_artifacts` answers from the journal (what this process logged since the server went
  away), so that `mlflow.register_model("runs:/<run>/model", ...)`, which lists the run's
  folder for its `MLmodel`, works offline. An empty answer there is an error, not "no files".
"""

from __future__ import annotations

import os
import posixpath
import time
from pathlib import Path
from typing import Any

from mlflow.entities import FileInfo
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE
from mlflow.store.artifact.artifact_repo import verify_artifact_path
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
from mlflow.tracking._tracking_service.utils import get_tracking_uri
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.mime_type_utils import _guess_mime_type
from mlflow.utils.rest_utils import MlflowHostCreds, http_request

from cairn._config import Settings
from cairn.spool.sync import ARTIFACT_ROUTE, Refused, Unreachable, spool_for, substitute_uri

MAX_BYTES_ENV = "CAIRN_SPOOL_MAX_ARTIFACT_BYTES"
DEFAULT_MAX_BYTES = 4 * 1024**3
UPLOAD_RETRIES = 2


def max_spool_bytes() -> int:
    value = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_BYTES
    try:
        return int(value)
    except ValueError:
        raise MlflowException(f"{MAX_BYTES_ENV} must be a number of bytes, not {value!r}") from None


def put_file(host_creds: MlflowHostCreds, rel_path: str, local_file: Path, retries: int = UPLOAD_RETRIES) -> None:
    """PUTs one file to `<host_creds.host>/<rel_path>` (MLflow's artifact upload), reopening it for
    each attempt. Raises `Unreachable` (connection failure, 5xx, 429) or `Refused` (other 4xx)."""
    headers = {"Content-Type": _guess_mime_type(posixpath.basename(rel_path))}
    error = "no attempt"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(0.2 * 2**attempt)
        try:
            with open(local_file, "rb") as f:
                response = http_request(
                    host_creds, "/" + rel_path, "PUT", data=f, extra_headers=headers,
                    max_retries=0, raise_on_status=False,
                )
        except MlflowException as e:  # connection refused, reset, timed out
            error = str(e)
            continue
        if response.status_code >= 500 or response.status_code == 429:
            error = f"HTTP {response.status_code}"
            continue
        if response.status_code >= 400:
            raise Refused(f"HTTP {response.status_code}: {response.text[:500]}")
        return
    raise Unreachable(error)


def upload_blob(settings: Settings, body: dict[str, Any], blob: Path) -> None:
    """Replays one `ARTIFACT` entry: the blob, PUT to its artifact location on `settings.url`."""
    resolved = MlflowArtifactsRepository.resolve_uri(str(body["artifact_uri"]), settings.url)
    creds = MlflowHostCreds(
        resolved,
        username=settings.username,
        password=settings.password,
        token=settings.token,
        ignore_tls_verification=not settings.verify_tls,
    )
    put_file(creds, str(body["path"]), blob, retries=0)


class SpoolingArtifactsRepository(MlflowArtifactsRepository):
    """`MlflowArtifactsRepository` whose uploads are journaled while the server is away."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        super().__init__(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
        self._cairn_uri = artifact_uri
        self._cairn_tracking_uri = tracking_uri or get_tracking_uri()

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        verify_artifact_path(artifact_path)
        name = os.path.basename(local_file)
        rel = posixpath.join(artifact_path, name) if artifact_path else name
        spool = spool_for(self._cairn_tracking_uri)
        body: dict[str, Any] = {"artifact_uri": self._cairn_uri, "path": rel}

        def offline() -> None:
            size = os.path.getsize(local_file)
            limit = max_spool_bytes()
            if size > limit:
                raise MlflowException(
                    f"Cairn: {spool.url} is unreachable and {local_file} ({size} bytes) is larger than "
                    f"{MAX_BYTES_ENV} ({limit} bytes), so it is not spooled. Log it again once the server "
                    "is back (run cairn-sync first), or raise the limit.",
                    error_code=TEMPORARILY_UNAVAILABLE,
                )

        spool.write(
            ARTIFACT_ROUTE, body, lambda: self._upload_now(local_file, artifact_path, rel), offline,
            blob=Path(local_file),
        )

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        spool = spool_for(self._cairn_tracking_uri)
        if not spool.still_holding():
            return list(super().list_artifacts(path))
        prefix = posixpath.join(self._cairn_uri.rstrip("/"), path) if path else self._cairn_uri.rstrip("/")
        found: dict[str, FileInfo] = {}
        for body in spool.journal.bodies(ARTIFACT_ROUTE):
            full = f"{str(body.get('artifact_uri', '')).rstrip('/')}/{body.get('path', '')}"
            if not full.startswith(prefix + "/"):
                continue
            head, sep, _ = full[len(prefix) + 1:].partition("/")
            rel = posixpath.join(path, head) if path else head
            found[rel] = FileInfo(rel, True, None) if sep else FileInfo(rel, False, body.get("size"))
        if not found:
            raise MlflowException(
                f"Cairn: {spool.url} is unreachable and nothing under {prefix} was logged while it was; "
                "listing artifacts needs the server",
                error_code=TEMPORARILY_UNAVAILABLE,
            )
        return sorted(found.values(), key=lambda f: str(f.path))

    def _upload_now(self, local_file: str, artifact_path: str | None, rel: str) -> None:
        spool = spool_for(self._cairn_tracking_uri)
        uri = substitute_uri(self._cairn_uri, spool.substitutions())
        resolved = self.artifact_uri if uri == self._cairn_uri else self.resolve_uri(uri, self._cairn_tracking_uri)
        if uri == self._cairn_uri and self._should_multipart_upload(local_file):
            try:
                super().log_artifact(local_file, artifact_path)
            except MlflowException as e:
                raise Unreachable(str(e)) from e
            return
        try:
            put_file(get_default_host_creds(resolved), rel, Path(local_file))
        except Refused as e:
            raise MlflowException(f"artifact upload of {rel} refused: {e}") from e
