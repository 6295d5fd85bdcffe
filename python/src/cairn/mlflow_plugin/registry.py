"""The `mlflow.model_registry_store` plugin for `http` and `https`: MLflow's own registry
`RestStore`, whose writes go through the offline spool (MLflow registers entry points after its
built-in schemes, so this replaces the built-in builder for http(s), as the tracking store does).

Spooled: create registered model, create model version, set alias, set registered-model and
model-version tags, update descriptions, transition stage. The server numbers model versions,
so a version created offline is answered with a placeholder version: a negative number
(`-<12 digits>`, which no server gives; not `pending-…`, because `MlflowClient.
set_registered_model_alias` insists on `int(version)`), status `PENDING_REGISTRATION` and a
status message saying so. MLflow's wait for registration (`_await_model_version_creation`, which
`register_model` and `create_model_version` call and which would poll `get_model_version` while
the status is pending) returns at once for it. Later
writes may name the placeholder (`set_registered_model_alias(name, "champion", mv.version)`):
replay learns the real number from the server's answer to the creation and substitutes it in
every later entry naming that version of that model (`cairn.spool.sync.learn`), and in writes
sent online after the replay. A `create_registered_model` replayed against a model that exists
by then carries on, as `mlflow.register_model` does online.

Not spooled, and refused with one clear `MlflowException` while the server is away: deletes and
renames (they depend on what the server holds). Reads are MLflow's and need the server, except
what this process created while the spool was journaling: `get_model_version` of a placeholder,
and `get_registered_model` of a model it created (MlflowClient reads the model before most
registry writes, to refuse prompts: without this, `set_registered_model_alias` would wait out
MLflow's retries and fail).
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.model_registry_pb2 import (
    CreateModelVersion,
    CreateRegisteredModel,
    DeleteModelVersion,
    DeleteModelVersionTag,
    DeleteRegisteredModel,
    DeleteRegisteredModelAlias,
    DeleteRegisteredModelTag,
    GetModelVersion,
    GetRegisteredModel,
    RenameRegisteredModel,
    SetModelVersionTag,
    SetRegisteredModelAlias,
    SetRegisteredModelTag,
    TransitionModelVersionStage,
    UpdateModelVersion,
    UpdateRegisteredModel,
)
from mlflow.store.model_registry.rest_store import RestStore as RegistryRestStore
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.proto_json_utils import parse_dict

from cairn.mlflow_plugin.offline import cannot_spool, is_connection_failure, send_json
from cairn.spool.sync import MARK, is_placeholder, new_placeholder, spool_for, substitute

SPOOLED = (
    CreateRegisteredModel,
    CreateModelVersion,
    SetRegisteredModelAlias,
    SetRegisteredModelTag,
    SetModelVersionTag,
    UpdateRegisteredModel,
    UpdateModelVersion,
    TransitionModelVersionStage,
)
# Refused at once while the server is away: they depend on its state. Reads are MLflow's own.
REFUSED = (
    DeleteRegisteredModel,
    DeleteModelVersion,
    DeleteRegisteredModelTag,
    DeleteModelVersionTag,
    DeleteRegisteredModelAlias,
    RenameRegisteredModel,
)
PENDING_MESSAGE = (
    "created while the server was unreachable and journaled by Cairn's offline spool: the server "
    "numbers this version when the journal is replayed (cairn-sync)"
)


class CairnRegistryStore(RegistryRestStore):
    """The registry `RestStore`, journaling its writes while the server is away."""

    def __init__(self, store_uri: str) -> None:
        super().__init__(partial(get_default_host_creds, store_uri))
        self.store_uri = store_uri
        # Versions this process created offline, by (name, placeholder), for `get_model_version`.
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        # Registered models this process created offline, for `get_registered_model`, which
        # MlflowClient calls before most registry writes (`_raise_if_prompt`).
        self._models: dict[str, dict[str, Any]] = {}

    def _call_endpoint(self, api: Any, json_body: Any, call_all_endpoints: bool = False, extra_headers: Any = None) -> Any:
        spool = spool_for(self.store_uri)
        endpoint, method = self._get_endpoint_from_method(api)
        body = json.loads(json_body) if json_body else {}
        if api is GetModelVersion and is_placeholder(body.get("version")):
            real = substitute(body, spool.substitutions())
            if is_placeholder(real.get("version")):
                pending = self._pending.get((str(body.get("name")), str(body["version"])))
                if pending is None:
                    raise MlflowException(
                        f"Model version {body.get('version')} of {body.get('name')!r} is a placeholder of "
                        "Cairn's offline spool that this process did not create; run cairn-sync and use "
                        "the version number the server gave it"
                    )
                return _answer(api.Response(), {"model_version": pending})
            json_body = json.dumps(real)
        if api is GetRegisteredModel and body.get("name") in self._models and spool.still_holding():
            # Created offline by this process: the server does not know it yet.
            return _answer(api.Response(), {"registered_model": self._models[body["name"]]})
        if api not in SPOOLED or call_all_endpoints:
            if api not in REFUSED:
                return super()._call_endpoint(api, json_body, call_all_endpoints, extra_headers)
            # A write the spool cannot hold: it needs the server now.
            if spool.still_holding():
                raise cannot_spool(api, spool.url, spool.path)
            try:
                return super()._call_endpoint(api, json_body, call_all_endpoints, extra_headers)
            except MlflowException as e:
                if is_connection_failure(e):
                    spool.mark_offline()
                    raise cannot_spool(api, spool.url, spool.path) from e
                raise
        proto = api.Response()
        send = substitute(body, spool.substitutions())  # a placeholder a replay has resolved

        def online() -> Any:
            return send_json(self.get_host_creds(), endpoint, method, send, proto)

        return spool.write(f"{method} {endpoint}", body, online, lambda: self._offline_answer(api, body, proto))

    def _offline_answer(self, api: Any, body: dict[str, Any], proto: Any) -> Any:
        """The answer to a write journaled offline: what the server would say, as far as the
        client can know it."""
        now = int(time.time() * 1000)
        name = body.get("name")
        if api is CreateRegisteredModel:
            model = {"name": name, "tags": list(body.get("tags", [])), "description": body.get("description", ""),
                     "creation_timestamp": now, "last_updated_timestamp": now, "aliases": []}
            if len(self._models) > 1000:
                self._models.pop(next(iter(self._models)))
            self._models[str(name)] = model
            return _answer(proto, {"registered_model": model})
        known = self._models.get(str(name))
        if api is UpdateRegisteredModel:
            model = known if known is not None else {"name": name}
            model.update({"description": body.get("description", ""), "last_updated_timestamp": now})
            return _answer(proto, {"registered_model": model})
        if api is SetRegisteredModelTag and known is not None:
            known["tags"] = [t for t in known["tags"] if t.get("key") != body.get("key")]
            known["tags"].append({"key": body.get("key"), "value": body.get("value")})
        if api is SetRegisteredModelAlias and known is not None:
            known["aliases"] = [a for a in known["aliases"] if a.get("alias") != body.get("alias")]
            known["aliases"].append({"alias": body.get("alias"), "version": body.get("version")})
        if api is CreateModelVersion:
            placeholder = new_placeholder()
            body[MARK] = {"version": placeholder}
            version = {
                "name": name, "version": placeholder, "creation_timestamp": now, "last_updated_timestamp": now,
                "current_stage": "None", "description": body.get("description", ""), "source": body.get("source", ""),
                "run_id": body.get("run_id", ""), "run_link": body.get("run_link", ""), "tags": body.get("tags", []),
                "status": "PENDING_REGISTRATION", "status_message": PENDING_MESSAGE,
            }
            if body.get("model_id"):
                version["model_id"] = body["model_id"]
            if len(self._pending) > 1000:
                self._pending.pop(next(iter(self._pending)))
            self._pending[(str(name), placeholder)] = version
            return _answer(proto, {"model_version": version})
        if api in (UpdateModelVersion, TransitionModelVersionStage):
            version = dict(self._pending.get((str(name), str(body.get("version"))), {}))
            version.update({"name": name, "version": body.get("version"), "last_updated_timestamp": now})
            if api is UpdateModelVersion:
                version["description"] = body.get("description", "")
            else:
                version["current_stage"] = body.get("stage", "None")
            return _answer(proto, {"model_version": version})
        return proto  # set alias, set tags: an empty answer

    def _await_model_version_creation(self, mv: Any, await_creation_for: Any) -> None:
        if is_placeholder(mv.version):
            return  # journaled: nothing on the server to wait for until cairn-sync
        super()._await_model_version_creation(mv, await_creation_for)


def _answer(proto: Any, answer: dict[str, Any]) -> Any:
    parse_dict(js_dict=answer, message=proto)
    return proto


def registry_store(store_uri: str, **_: Any) -> CairnRegistryStore:
    """The builder MLflow's registry store registry calls for `http(s)://` registry URIs."""
    return CairnRegistryStore(store_uri)
