"""The `mlflow.tracking_store` plugin for `http` and `https`: MLflow's own `RestStore`, plus

- the offline spool: the run writes (create, update, log metric/param/batch, set/delete tag,
  inputs, outputs) and the logged-model writes (create, finalize, params, set/delete tag) go
  through `cairn.spool.sync.Spool`, which sends them, or journals them while the server is away
  and replays them when it is back. A run or logged model created offline gets its id here and
  keeps it: the replay creates it under that id (`PUT /api/cairn/v1/runs/{id}`,
  `PUT /api/cairn/v1/logged-models/{id}`), so `mlflow.<flavor>.log_model` works offline. Reads
  are MLflow's own and fail as they always did when the server is down, except the reads MLflow
  makes of a run or logged model this process created (`get_run`, `get_logged_model`), which
  are answered from what this store knows while the server is away.
  Artifacts are spooled by the `mlflow-artifacts` repository plugin (`artifacts.py`), registry
  writes by the registry store plugin (`registry.py`). Other writes cannot be spooled (deletes,
  restores and experiment changes depend on the server's state): while the server is away they
  fail at once with one `MlflowException` saying so (`offline.cannot_spool`).
- the upload of the files Cairn's capture tags point at (the uncommitted patch, the package list,
  lock files) right after `create_run`, which is the first moment the run exists. For a run
  created offline they are spooled with its other artifacts, before `create_run` returns.

The upload runs on a background thread so that `start_run` does not wait for it (three HTTP
requests would cost more than the capture itself); at interpreter exit, pending uploads are
waited for (up to `EXIT_WAIT_SECS`), so a short script still gets its files.

Everything else is MLflow's store unchanged, so this works against any MLflow-compatible server;
an upload that fails becomes a warning and a `cairn.capture.error` tag, never a failed run.
"""

from __future__ import annotations

import atexit
import json
import queue
import tempfile
import threading
import time
import uuid
import warnings
from functools import partial
from pathlib import Path
from typing import Any

from mlflow.entities import LoggedModel, LoggedModelStatus, Param, Run, RunData, RunInfo, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos import service_pb2
from mlflow.protos.service_pb2 import (
    CreateLoggedModel,
    CreateRun,
    DeleteLoggedModelTag,
    DeleteTag,
    FinalizeLoggedModel,
    GetLoggedModel,
    GetRun,
    LogBatch,
    LogInputs,
    LogLoggedModelParamsRequest,
    LogMetric,
    LogOutputs,
    LogParam,
    SetLoggedModelTags,
    SetTag,
    UpdateRun,
)
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.tracking.rest_store import RestStore
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.proto_json_utils import parse_dict
from mlflow.utils.rest_utils import get_logged_model_endpoint

from cairn.capture import seeds, session
from cairn.mlflow_plugin.offline import WRITE_RETRIES, WRITE_TIMEOUT_SECS, cannot_spool, is_connection_failure, send_json
from cairn.spool.sync import MARK, Unreachable, spool_for

__all__ = ["WRITE_RETRIES", "WRITE_TIMEOUT_SECS", "CairnRestStore", "rest_store"]

# The writes the spool can hold: everything a training loop does between `start_run` and
# `end_run`, `log_model` included. MLflow sends these to its fixed routes...
SPOOLED = (CreateRun, UpdateRun, LogMetric, LogParam, SetTag, DeleteTag, LogBatch, LogInputs, LogOutputs, CreateLoggedModel)
# ...and these to a route naming the logged model (`endpoint`).
SPOOLED_MODEL_WRITES = (FinalizeLoggedModel, SetLoggedModelTags, DeleteLoggedModelTag, LogLoggedModelParamsRequest)
# The writes refused at once while the server is away: they depend on its state. Every other
# call is MLflow's own, offline or not.
REFUSED = tuple(
    getattr(service_pb2, name)
    for name in (
        "CreateExperiment", "DeleteExperiment", "RestoreExperiment", "UpdateExperiment", "SetExperimentTag",
        "DeleteExperimentTag", "DeleteRun", "RestoreRun", "LogModel", "DeleteLoggedModel",
    )
    if hasattr(service_pb2, name)
)
# How many runs and logged models a store remembers for the reads MLflow makes of them.
REMEMBERED = 1000


EXIT_WAIT_SECS = 30.0


class _Uploader:
    """One worker thread taking upload jobs in order."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[CairnRestStore, Any, list[session.PendingFile]]] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def submit(self, store: "CairnRestStore", run: Any, files: list[session.PendingFile]) -> None:
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._work, name="cairn-upload", daemon=True)
                self.thread.start()
                atexit.register(self.wait)
        self.jobs.put((store, run, files))

    def _work(self) -> None:
        while True:
            store, run, files = self.jobs.get()
            try:
                store.upload_capture(run, files)
            finally:
                self.jobs.task_done()

    def wait(self, timeout: float = EXIT_WAIT_SECS) -> bool:
        """Waits until every submitted upload finished; `True` if they did in time."""
        done = threading.Event()

        def join() -> None:
            self.jobs.join()
            done.set()

        threading.Thread(target=join, daemon=True).start()
        return done.wait(timeout)


uploader = _Uploader()


class CairnRestStore(RestStore):
    """`RestStore` that completes Cairn's capture of each run it creates."""

    def __init__(self, store_uri: str) -> None:
        super().__init__(partial(get_default_host_creds, store_uri))
        self.store_uri = store_uri
        # Runs this store created, for the reads MLflow makes of its own run while the server
        # is away (`end_run` reads the run to print its URL; `log_model` reads its params), with
        # the params logged to them through this store.
        self._created: dict[str, Any] = {}
        self._params: dict[str, dict[str, str]] = {}
        # Logged models this store created, as this store last saw them, for the reads
        # `log_model` makes while the server is away (the artifact location, the status).
        self._models: dict[str, LoggedModel] = {}

    def get_run(self, run_id: str) -> Any:
        if run_id not in self._created:
            return super().get_run(run_id)
        spool = spool_for(self.store_uri)
        if spool.still_holding():
            return self._remembered_run(run_id)
        # A run of this process: read with the spool's short retries, so that the first write
        # after the server died (`log_artifact` reads the run's artifact location) is journaled
        # in a second instead of waiting out MLflow's retries.
        path, method = self._METHOD_TO_INFO[GetRun]
        try:
            proto = send_json(self.get_host_creds(), path, method, {"run_id": run_id}, GetRun.Response())
        except Unreachable:
            spool.mark_offline()
            return self._remembered_run(run_id)
        return Run.from_proto(proto.run)

    def _remembered_run(self, run_id: str) -> Any:
        """The run as created, with the params logged to it since; no metrics, so that
        `log_model` does not go on to read their histories from a server that is away."""
        run = self._created[run_id]
        params = [Param(k, v) for k, v in self._params.get(run_id, {}).items()]
        return Run(run.info, RunData(tags=[RunTag(k, v) for k, v in run.data.tags.items()], params=params), run.inputs, run.outputs)

    def create_logged_model(self, *args: Any, **kwargs: Any) -> Any:
        model = super().create_logged_model(*args, **kwargs)
        self._remember_model(model)
        return model

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> Any:
        if model_id not in self._models:
            return super().get_logged_model(model_id, allow_deleted)
        spool = spool_for(self.store_uri)
        if spool.still_holding():
            return self._models[model_id]
        path = get_logged_model_endpoint(model_id)
        try:
            proto = send_json(self.get_host_creds(), path, "GET", {}, GetLoggedModel.Response())
        except Unreachable:
            spool.mark_offline()
            return self._models[model_id]
        return self._remember_model(LoggedModel.from_proto(proto.model))

    def _remember_model(self, model: LoggedModel) -> LoggedModel:
        if len(self._models) > REMEMBERED and model.model_id not in self._models:
            self._models.pop(next(iter(self._models)))
        self._models[model.model_id] = model
        return model

    def _call_endpoint(
        self,
        api: Any,
        json_body: Any = None,
        endpoint: Any = None,
        retry_timeout_seconds: Any = None,
        response_proto: Any = None,
    ) -> Any:
        if api in SPOOLED_MODEL_WRITES and endpoint is not None:
            return self._model_write(api, endpoint, json_body, response_proto or api.Response())
        if api not in SPOOLED or endpoint is not None:
            if api not in REFUSED:
                return super()._call_endpoint(api, json_body, endpoint, retry_timeout_seconds, response_proto)
            # A write the spool cannot hold (deleting a run, …).
            spool = spool_for(self.store_uri)
            if spool.still_holding():
                raise cannot_spool(api, spool.url, spool.path)
            try:
                return super()._call_endpoint(api, json_body, endpoint, retry_timeout_seconds, response_proto)
            except MlflowException as e:
                if is_connection_failure(e):
                    spool.mark_offline()
                    raise cannot_spool(api, spool.url, spool.path) from e
                raise
        path, method = self._METHOD_TO_INFO[api]
        proto = response_proto or api.Response()
        body = json.loads(json_body) if json_body else {}
        spool = spool_for(self.store_uri)
        if api is CreateRun:
            run_id = uuid.uuid4().hex
            route = f"PUT /api/cairn/v1/runs/{run_id}"
            return spool.write(
                route, body, lambda: self._send(path, method, body, proto), lambda: _offline_run(proto, run_id, body)
            )
        if api is CreateLoggedModel:
            # The id the server gives (`m-` and 32 hex digits), chosen here so that the files,
            # params and finalization logged against it offline land on it when replayed.
            model_id = f"m-{uuid.uuid4().hex}"
            route = f"PUT /api/cairn/v1/logged-models/{model_id}"
            return spool.write(
                route, body, lambda: self._send(path, method, body, proto), lambda: _offline_model(proto, model_id, body)
            )
        if api in (LogParam, LogBatch) and body.get("run_id") in self._created:
            logged = [body] if api is LogParam else body.get("params")
            self._params.setdefault(body["run_id"], {}).update(_pairs(logged))
        return spool.write(f"{method} {path}", body, lambda: self._send(path, method, body, proto), lambda: proto)

    def _model_write(self, api: Any, endpoint: str, json_body: Any, proto: Any) -> Any:
        """A write to `logged-models/{id}[/...]`: sent, or journaled with the answer the server
        would give; the remembered model follows either way."""
        method = self._METHOD_TO_INFO[api][1]
        body = json.loads(json_body) if json_body else {}
        model_id = endpoint.split("/logged-models/", 1)[1].split("/", 1)[0]
        spool = spool_for(self.store_uri)
        answer = spool.write(
            f"{method} {endpoint}", body, lambda: self._send(endpoint, method, body, proto), lambda: proto
        )
        model = self._models.get(model_id)
        if model is None:
            return answer
        if api is FinalizeLoggedModel:
            if answer.HasField("model"):
                self._remember_model(LoggedModel.from_proto(answer.model))
                return answer
            request = FinalizeLoggedModel()
            parse_dict(js_dict=body, message=request)
            status = LoggedModelStatus.from_proto(request.status)
            answer.model.CopyFrom(self._remember_model(_changed(model, status=status)).to_proto())
        elif api is SetLoggedModelTags:
            self._remember_model(_changed(model, tags={**model.tags, **_pairs(body.get("tags"))}))
        elif api is DeleteLoggedModelTag:
            key = endpoint.rsplit("/tags/", 1)[1]
            self._remember_model(_changed(model, tags={k: v for k, v in model.tags.items() if k != key}))
        elif api is LogLoggedModelParamsRequest:
            self._remember_model(_changed(model, params={**model.params, **_pairs(body.get("params"))}))
        return answer

    def _send(self, path: str, method: str, body: dict[str, Any], proto: Any) -> Any:
        return send_json(self.get_host_creds(), path, method, body, proto)

    def create_run(self, experiment_id: Any, user_id: Any, start_time: Any, tags: Any, run_name: Any) -> Any:
        run = super().create_run(experiment_id, user_id, start_time, tags, run_name)
        if len(self._created) > REMEMBERED:
            forgotten = next(iter(self._created))
            self._created.pop(forgotten)
            self._params.pop(forgotten, None)
        self._created[run.info.run_id] = run
        files = session.take_files({t.key: t.value for t in tags or []})
        if files and spool_for(self.store_uri).holding:
            # The run exists only in the journal: its files are spooled now (a local copy),
            # after the run's creation, so that they are replayed after it.
            self.upload_capture(run, files)
        elif files:
            uploader.submit(self, run, files)
        return run

    def update_run_info(self, run_id: Any, run_status: Any, end_time: Any, run_name: Any) -> Any:
        info = super().update_run_info(run_id, run_status, end_time, run_name)
        if run_status == RunStatus.RUNNING and not session.disabled():
            # Only `start_run` of an existing run (a script launched by `cairn run` joining its
            # run) sets a run RUNNING again, and MLflow calls no context provider then: seeds
            # set before `start_run` are recorded here instead.
            tags = seeds.seed_tags()
            if tags:
                try:
                    self.log_batch(run_id, metrics=[], params=[], tags=[RunTag(k, v) for k, v in tags.items()])
                except Exception as e:  # noqa: BLE001 - capture never fails a run
                    warnings.warn(f"Cairn capture incomplete: seeds: {type(e).__name__}: {e}", stacklevel=2)
        return info

    def upload_capture(self, run: Any, files: list[session.PendingFile]) -> None:
        """Uploads the captured files into the run; a failure is tagged on the run."""
        try:
            self._upload(run.info.artifact_uri, files)
        except Exception as e:  # noqa: BLE001 - capture never fails a run
            message = f"upload: {type(e).__name__}: {e}"
            warnings.warn(f"Cairn capture incomplete: {message}", stacklevel=2)
            try:
                self.set_tag(run.info.run_id, RunTag(session.TAG_ERROR, message[: session.MAX_TAG_VALUE]))
            except Exception:  # noqa: BLE001 - the server may be gone altogether
                pass

    def _upload(self, artifact_uri: str, files: list[session.PendingFile]) -> None:
        repo = get_artifact_repository(artifact_uri, tracking_uri=self.store_uri)
        with tempfile.TemporaryDirectory(prefix="cairn-capture-") as tmp:
            for f in files:
                path = Path(tmp) / f.artifact_dir / f.name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(f.data)
            for directory in sorted({f.artifact_dir for f in files}):
                repo.log_artifacts(str(Path(tmp) / directory), directory)


def _offline_run(proto: Any, run_id: str, body: dict[str, Any]) -> Any:
    """The answer to a `runs/create` journaled offline: the run as the server will create it."""
    tags = {t["key"]: t["value"] for t in body.get("tags", [])}
    name = body.get("run_name") or tags.get("mlflow.runName") or f"offline-{run_id[:8]}"
    tags.setdefault("mlflow.runName", name)
    body.setdefault("run_name", name)
    # The server's default artifact location of a run; if the experiment has another, replay
    # learns it from the answer and the run's journaled artifacts follow (`sync.learn`).
    artifact_uri = f"mlflow-artifacts:/{body.get('experiment_id', '0')}/{run_id}/artifacts"
    body[MARK] = {"artifact_uri": artifact_uri}
    info = RunInfo(
        run_id=run_id,
        experiment_id=str(body.get("experiment_id", "0")),
        user_id=body.get("user_id", ""),
        status=RunStatus.to_string(RunStatus.RUNNING),
        start_time=int(body.get("start_time") or 0),
        end_time=None,
        lifecycle_stage="active",
        artifact_uri=artifact_uri,
        run_name=name,
    )
    run = Run(info, RunData(tags=[RunTag(k, v) for k, v in tags.items()]))
    proto.run.CopyFrom(run.to_proto())
    return proto


def _offline_model(proto: Any, model_id: str, body: dict[str, Any]) -> Any:
    """The answer to a `logged-models` create journaled offline: the model as the server will
    create it, in the experiment's default artifact location (replay learns the real one from
    the server's answer, as for runs)."""
    experiment_id = str(body.get("experiment_id", "0"))
    name = body.get("name") or f"offline-{model_id[2:10]}"
    body["name"] = name
    artifact_uri = f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"
    body[MARK] = {"artifact_uri": artifact_uri}
    now = int(time.time() * 1000)
    model = LoggedModel(
        experiment_id=experiment_id,
        model_id=model_id,
        name=name,
        artifact_location=artifact_uri,
        creation_timestamp=now,
        last_updated_timestamp=now,
        model_type=body.get("model_type"),
        source_run_id=body.get("source_run_id"),
        status=LoggedModelStatus.PENDING,
        tags=_pairs(body.get("tags")),
        params=_pairs(body.get("params")),
    )
    proto.model.CopyFrom(model.to_proto())
    return proto


def _pairs(items: Any) -> dict[str, str]:
    """`[{"key", "value"}, ...]` of a request body as a dict."""
    return {str(i["key"]): str(i.get("value", "")) for i in items or [] if isinstance(i, dict) and "key" in i}


def _changed(model: LoggedModel, **changes: Any) -> LoggedModel:
    """`model` with some of its status, tags and params replaced, updated now."""
    fields: dict[str, Any] = {
        "status": model.status,
        "tags": model.tags,
        "params": model.params,
        **changes,
    }
    return LoggedModel(
        experiment_id=model.experiment_id,
        model_id=model.model_id,
        name=model.name,
        artifact_location=model.artifact_location,
        creation_timestamp=model.creation_timestamp,
        last_updated_timestamp=int(time.time() * 1000),
        model_type=model.model_type,
        source_run_id=model.source_run_id,
        status_message=model.status_message,
        **fields,
    )


def rest_store(store_uri: str, **_: Any) -> CairnRestStore:
    """The builder MLflow's store registry calls for `http(s)://` tracking URIs."""
    return CairnRestStore(store_uri)
