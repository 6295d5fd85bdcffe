"""The model registry through the real client: registered models (create, get, rename, update,
delete, tags, search with filter, order and pages), versions registered from a run's files,
tags, descriptions, stage transitions with archiving, aliases and `load_model` by alias,
latest versions, version search, and MLflow's errors for unknown models, duplicate names, bad
aliases and bad versions.

Cairn-only: a version's files are pinned when it is registered (overwriting the run's file
afterwards does not change what `models:/name/1` downloads), and alias moves and stage
transitions are kept as history, served by `/api/cairn/v1/models/...` and `cairn models`.

The model files are written with `mlflow.sklearn.save_model` and logged with `log_artifacts`,
so these tests do not depend on the logged-models API that `log_model` uses.
"""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from servers import Server, cairn_cli

FEATURES = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.error_code


@pytest.fixture
def name(unique: str) -> str:
    """A registered-model name no other test uses."""
    return f"reg-{unique}"


@pytest.fixture
def run_with_model(tracking: Server, experiment_id: str, tmp_path: Path):
    """A finished run holding a tiny sklearn model under `model/`; returns (run_id, model)."""

    def make(labels: list[int]) -> tuple[str, LogisticRegression]:
        model = LogisticRegression().fit(FEATURES, labels)
        folder = tmp_path / f"model-{time.monotonic_ns()}"
        mlflow.sklearn.save_model(model, str(folder))
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_artifacts(str(folder), "model")
        return run.info.run_id, model

    return make


def register(run_id: str, name: str) -> str:
    """Registers the run's `model/` folder the way users do; returns the version."""
    return mlflow.register_model(f"runs:/{run_id}/model", name).version


def test_registered_model_lifecycle(client: MlflowClient, name: str) -> None:
    created = client.create_registered_model(name, tags={"team": "a"}, description="first")
    assert created.name == name
    assert created.tags == {"team": "a"}
    assert created.description == "first"
    assert created.creation_timestamp > 0

    with pytest.raises(MlflowException) as excinfo:
        client.create_registered_model(name)
    assert error_code(excinfo) == "RESOURCE_ALREADY_EXISTS"

    updated = client.update_registered_model(name, description="second")
    assert updated.description == "second"
    client.set_registered_model_tag(name, "stage", "dev")
    client.delete_registered_model_tag(name, "team")
    fetched = client.get_registered_model(name)
    assert fetched.tags == {"stage": "dev"}
    assert fetched.description == "second"
    assert fetched.last_updated_timestamp >= fetched.creation_timestamp

    client.rename_registered_model(name, f"{name}-new")
    assert client.get_registered_model(f"{name}-new").tags == {"stage": "dev"}
    with pytest.raises(MlflowException) as excinfo:
        client.get_registered_model(name)
    assert error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"

    client.delete_registered_model(f"{name}-new")
    with pytest.raises(MlflowException) as excinfo:
        client.get_registered_model(f"{name}-new")
    assert error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"


def test_search_registered_models(client: MlflowClient, name: str) -> None:
    for suffix in ["c", "a", "b"]:
        client.create_registered_model(f"{name}-{suffix}", tags={"kind": "vowel" if suffix == "a" else "consonant"})

    found = client.search_registered_models(filter_string=f"name LIKE '{name}-%'", order_by=["name DESC"])
    assert [m.name for m in found] == [f"{name}-c", f"{name}-b", f"{name}-a"]

    first = client.search_registered_models(f"name LIKE '{name}-%'", max_results=2, order_by=["name ASC"])
    assert [m.name for m in first] == [f"{name}-a", f"{name}-b"]
    assert first.token
    rest = client.search_registered_models(
        f"name LIKE '{name}-%'", max_results=2, order_by=["name ASC"], page_token=first.token
    )
    assert [m.name for m in rest] == [f"{name}-c"]
    assert not rest.token

    tagged = client.search_registered_models(f"name LIKE '{name}-%' AND tags.kind = 'vowel'")
    assert [m.name for m in tagged] == [f"{name}-a"]
    assert [m.name for m in client.search_registered_models(f"name = '{name}-b'")] == [f"{name}-b"]

    with pytest.raises(MlflowException) as excinfo:
        client.search_registered_models("nonsense = 'x'")
    assert error_code(excinfo) == "INVALID_PARAMETER_VALUE"


def test_versions_registered_from_run_files(client: MlflowClient, name: str, run_with_model) -> None:
    run_id, model = run_with_model([0, 0, 1, 1])
    assert register(run_id, name) == "1"
    second_run, _ = run_with_model([0, 1, 0, 1])
    assert register(second_run, name) == "2"

    version = client.get_model_version(name, "1")
    assert version.run_id == run_id
    assert version.source.endswith("/model")
    assert version.status == "READY"
    assert version.current_stage == "None"

    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    assert list(loaded.predict(FEATURES)) == list(model.predict(FEATURES))

    client.update_model_version(name, "1", description="baseline")
    client.set_model_version_tag(name, "1", "validated", "yes")
    client.set_model_version_tag(name, "1", "temp", "x")
    client.delete_model_version_tag(name, "1", "temp")
    version = client.get_model_version(name, "1")
    assert version.description == "baseline"
    assert version.tags == {"validated": "yes"}

    by_run = client.search_model_versions(f"run_id = '{second_run}'")
    assert [(v.name, v.version) for v in by_run] == [(name, "2")]
    by_name = client.search_model_versions(f"name = '{name}'", order_by=["version_number DESC"])
    assert [v.version for v in by_name] == ["2", "1"]
    page = client.search_model_versions(f"name = '{name}'", max_results=1, order_by=["version_number ASC"])
    assert [v.version for v in page] == ["1"] and page.token
    page = client.search_model_versions(
        f"name = '{name}'", max_results=1, order_by=["version_number ASC"], page_token=page.token
    )
    assert [v.version for v in page] == ["2"]

    client.delete_model_version(name, "1")
    with pytest.raises(MlflowException) as excinfo:
        client.get_model_version(name, "1")
    assert error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["2"]


def test_stage_transitions_and_latest_versions(client: MlflowClient, name: str, run_with_model) -> None:
    run_id, _ = run_with_model([0, 0, 1, 1])
    for _ in range(3):
        register(run_id, name)
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "staging")
    moved = client.transition_model_version_stage(name, "3", "Production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert client.get_model_version(name, "2").current_stage == "Staging"

    latest = {v.current_stage: v.version for v in client.get_latest_versions(name)}
    assert latest == {"Production": "3", "Staging": "2", "Archived": "1"}
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["3"]
    listed = {v.current_stage: v.version for v in client.get_registered_model(name).latest_versions}
    assert listed == latest

    with pytest.raises(MlflowException) as excinfo:
        client.transition_model_version_stage(name, "1", "Prod")
    assert error_code(excinfo) == "INVALID_PARAMETER_VALUE"


def test_aliases_and_load_by_alias(client: MlflowClient, name: str, run_with_model) -> None:
    first_run, first_model = run_with_model([0, 0, 1, 1])
    second_run, second_model = run_with_model([1, 1, 0, 0])
    register(first_run, name)
    register(second_run, name)

    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    assert client.get_model_version(name, "1").aliases == ["champion"]
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert list(loaded.predict(FEATURES)) == list(first_model.predict(FEATURES))

    client.set_registered_model_alias(name, "champion", "2")
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert list(loaded.predict(FEATURES)) == list(second_model.predict(FEATURES))
    assert client.get_model_version(name, "1").aliases == []

    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException) as excinfo:
        client.get_model_version_by_alias(name, "champion")
    assert error_code(excinfo) == "INVALID_PARAMETER_VALUE"
    assert client.get_registered_model(name).aliases == {}

    for bad in ["latest", "v3", "not ok!"]:
        with pytest.raises(MlflowException) as excinfo:
            client.set_registered_model_alias(name, bad, "1")
        assert error_code(excinfo) == "INVALID_PARAMETER_VALUE", bad
    with pytest.raises(MlflowException) as excinfo:
        client.set_registered_model_alias(name, "challenger", "9")
    assert error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"


def test_errors_carry_mlflow_codes(client: MlflowClient, name: str, run_with_model, tracking: Server) -> None:
    run_id, _ = run_with_model([0, 0, 1, 1])
    with pytest.raises(MlflowException) as excinfo:
        client.get_registered_model(f"{name}-missing")
    assert error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as excinfo:
        client.create_model_version(f"{name}-missing", f"runs:/{run_id}/model", run_id)
    assert error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"

    client.create_registered_model(name)
    with pytest.raises(MlflowException) as excinfo:
        client.get_model_version(name, "7")
    assert error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as excinfo:
        client.get_model_version(name, "seven")
    assert error_code(excinfo) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as excinfo:
        client.rename_registered_model(name, "bad/name")
    assert error_code(excinfo) == "INVALID_PARAMETER_VALUE"

    # A source that is not in the run it claims.
    other_run, _ = run_with_model([0, 1, 0, 1])
    source = client.get_run(run_id).info.artifact_uri + "/model"
    with pytest.raises(RestException) as excinfo:
        client.create_model_version(name, source, other_run)
    assert error_code(excinfo) == "INVALID_PARAMETER_VALUE"
    assert "Invalid model version source" in str(excinfo.value)

    # MLflow's exact routes and methods.
    base = f"{tracking.url}/api/2.0/mlflow"
    r = requests.post(f"{base}/registered-models/get", json={"name": name}, timeout=30)
    assert r.status_code == 405
    r = requests.get(f"{base}/registered-models/get", params={"name": name}, timeout=30)
    assert r.status_code == 200
    assert r.json()["registered_model"]["name"] == name
    r = requests.patch(f"{base}/registered-models/update", json={"name": name, "description": "d"}, timeout=30)
    assert r.json()["registered_model"]["description"] == "d"
    r = requests.get(f"{base}/registered-models/search", params={"max_results": 5000}, timeout=30)
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.cairn_only
def test_version_files_are_pinned(client: MlflowClient, name: str, experiment_id: str, tmp_path: Path) -> None:
    data = tmp_path / "weights.txt"
    data.write_text("version one")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifact(str(data), "model")
    source = f"{run.info.artifact_uri}/model"
    client.create_registered_model(name)
    version = client.create_model_version(name, source, run.info.run_id)
    assert version.version == "1"

    # Overwrite the run's file after registering: the run changes, the version does not.
    data.write_text("version two, overwritten")
    client.log_artifact(run.info.run_id, str(data), "model")
    run_copy = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/model", dst_path=str(tmp_path / "run"))
    assert (Path(run_copy) / "weights.txt").read_text() == "version two, overwritten"
    pinned = mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(tmp_path / "pinned"))
    assert (Path(pinned) / "weights.txt").read_text() == "version one"
    assert client.get_model_version_download_uri(name, "1").startswith("mlflow-artifacts:/model-versions/mv-")


@pytest.mark.cairn_only
def test_alias_history_and_as_of(client: MlflowClient, name: str, run_with_model, tracking: Server) -> None:
    run_id, _ = run_with_model([0, 0, 1, 1])
    register(run_id, name)
    register(run_id, name)
    client.set_registered_model_alias(name, "champion", "1")
    history_url = f"{tracking.url}/api/cairn/v1/models/{name}/history"
    first_move = next(e for e in requests.get(history_url, timeout=30).json()["history"] if e["kind"] == "alias_set")
    time.sleep(0.01)
    client.set_registered_model_alias(name, "champion", "2")
    client.transition_model_version_stage(name, "2", "Production")

    history = requests.get(history_url, timeout=30).json()["history"]
    kinds = [e["kind"] for e in history]
    assert kinds[0] == "model_created"
    assert kinds.count("version_created") == 2
    moves = [(e["version"], e["previous_version"]) for e in history if e["kind"] == "alias_set"]
    assert moves == [(1, None), (2, 1)]
    transition = next(e for e in history if e["kind"] == "stage_transition")
    assert (transition["from_stage"], transition["to_stage"]) == ("None", "Production")
    assert [e["seq"] for e in history] == sorted(e["seq"] for e in history)

    alias_url = f"{tracking.url}/api/cairn/v1/models/{name}/aliases/champion"
    then = requests.get(alias_url, params={"as_of": first_move["time"]}, timeout=30).json()
    assert then["version"] == 1
    assert then["model_version"]["version"] == 1
    assert requests.get(alias_url, timeout=30).json()["version"] == 2
    before = requests.get(alias_url, params={"as_of": first_move["time"] - 1}, timeout=30)
    assert before.status_code == 404
    assert before.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    # The history survives a rename, under the names the model had.
    client.rename_registered_model(name, f"{name}-renamed")
    renamed = requests.get(f"{tracking.url}/api/cairn/v1/models/{name}-renamed/history", timeout=30).json()
    assert renamed["history"][-1]["kind"] == "model_renamed"
    assert renamed["history"][-1]["previous_name"] == name

    # The command line reads the same history from the store.
    store = ["--backend-store-uri", tracking.backend_uri]
    out = cairn_cli("models", "history", f"{name}-renamed", *store)
    assert out.returncode == 0, out.stderr
    assert "set @champion of" in out.stdout and "(was v1)" in out.stdout
    out = cairn_cli("models", "alias", f"{name}-renamed", "champion", "--as-of", str(first_move["time"]), *store)
    assert out.returncode == 0, out.stderr
    assert "pointed to version 1" in out.stdout
