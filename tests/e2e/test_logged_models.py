"""MLflow 3's logged models and dataset inputs through the real client.

`log_model` creates a logged model, uploads its files under the model's own artifact root,
records it as the run's output and finalizes it; `load_model("models:/<model_id>")` reads it
back. The logged-models API (create, get, tags, params, finalize, search, delete) is driven
through `MlflowClient`, metrics are linked to models with `model_id`, and `log_input` of a
pandas dataset shows up in `get_run` and is searchable with `datasets.*` filters. Errors get
MLflow's codes.

Cairn-only: unknown model ids in run outputs are refused, logged model files are immutable
once a registered version pins them (see test_registry.py), and the audit log covers all of it.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LinearRegression

from servers import Server

ROWS = 20


def training_data() -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(ROWS * 2, dtype=float).reshape(ROWS, 2)
    y = x @ np.array([1.5, -2.0]) + 3.0
    return x, y


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.error_code


def test_log_model_then_load_it_by_model_id(tracking: Server, client: MlflowClient, experiment_id: str) -> None:
    x, y = training_data()
    model = LinearRegression().fit(x, y)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("alpha", "0.5")
        info = mlflow.sklearn.log_model(model, name="model")

    logged = client.get_logged_model(info.model_id)
    assert logged.model_id.startswith("m-")
    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == run.info.run_id
    assert logged.experiment_id == experiment_id
    assert logged.name == "model"
    assert logged.artifact_location.endswith(f"/models/{info.model_id}/artifacts")
    # log_model copies the run's params to the model.
    assert logged.params["alpha"] == "0.5"

    outputs = client.get_run(run.info.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [info.model_id]

    files = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
    assert {"MLmodel", "requirements.txt"} <= files

    loaded = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))
    sk = mlflow.sklearn.load_model(info.model_uri)
    np.testing.assert_allclose(sk.coef_, model.coef_)


def test_logged_model_lifecycle(client: MlflowClient, experiment_id: str) -> None:
    model = client.create_logged_model(
        experiment_id, name="lifecycle", tags={"team": "a"}, params={"lr": "0.1"}, model_type="regressor"
    )
    assert model.status == LoggedModelStatus.PENDING
    assert model.tags == {"team": "a"}
    assert model.params == {"lr": "0.1"}
    assert model.model_type == "regressor"

    client.set_logged_model_tags(model.model_id, {"team": "b", "stage": "dev"})
    client.delete_logged_model_tag(model.model_id, "stage")
    client.log_model_params(model.model_id, {"depth": "3"})
    fetched = client.get_logged_model(model.model_id)
    assert fetched.tags == {"team": "b"}
    assert fetched.params == {"lr": "0.1", "depth": "3"}

    finalized = client.finalize_logged_model(model.model_id, "READY")
    assert finalized.status == LoggedModelStatus.READY
    assert finalized.last_updated_timestamp >= model.creation_timestamp

    generated = client.create_logged_model(experiment_id)
    assert generated.name, "a model without a name gets a generated one"

    client.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException) as excinfo:
        client.get_logged_model(model.model_id)
    assert error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"
    remaining = client.search_logged_models(experiment_ids=[experiment_id])
    assert [m.model_id for m in remaining] == [generated.model_id]


def test_metrics_link_to_models_and_search_uses_them(client: MlflowClient, experiment_id: str) -> None:
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    models = {}
    for name, acc, lr in [("low", 0.2, "0.1"), ("mid", 0.6, "0.01"), ("high", 0.9, "0.01")]:
        model = client.create_logged_model(experiment_id, name=name, params={"lr": lr}, tags={"kind": "lin"})
        client.log_metric(run_id, "acc", acc, model_id=model.model_id, dataset_name="val", dataset_digest="d1")
        models[name] = model.model_id
    # A later point on another dataset does not change "val" orderings.
    client.log_metric(run_id, "acc", 0.99, model_id=models["low"], dataset_name="test", dataset_digest="d2")

    low = client.get_logged_model(models["low"])
    points = sorted((m.value, m.dataset_name) for m in low.metrics)
    assert points == [(0.2, "val"), (0.99, "test")]
    assert {m.run_id for m in low.metrics} == {run_id}
    assert {m.model_id for m in low.metrics} == {models["low"]}

    def names(**kwargs) -> list[str]:
        return [m.name for m in client.search_logged_models(experiment_ids=[experiment_id], **kwargs)]

    assert sorted(names(filter_string="metrics.acc > 0.5")) == ["high", "low", "mid"]
    assert sorted(
        names(filter_string="metrics.acc > 0.5", datasets=[{"dataset_name": "val", "dataset_digest": "d1"}])
    ) == ["high", "mid"]
    assert sorted(names(filter_string="params.lr = '0.01'")) == ["high", "mid"]
    assert names(filter_string="name = 'mid' AND tags.kind = 'lin'") == ["mid"]
    assert sorted(names(filter_string="name IN ('low', 'high')")) == ["high", "low"]
    assert names(filter_string="name LIKE 'hi%'") == ["high"]
    ordered = names(order_by=[{"field_name": "metrics.acc", "ascending": False, "dataset_name": "val"}])
    assert ordered == ["high", "mid", "low"]
    assert names(order_by=[{"field_name": "name", "ascending": True}]) == ["high", "low", "mid"]
    # Newest first by default.
    assert names() == ["high", "mid", "low"]

    page = client.search_logged_models(experiment_ids=[experiment_id], max_results=2)
    assert len(page) == 2 and page.token
    rest = client.search_logged_models(experiment_ids=[experiment_id], max_results=2, page_token=page.token)
    assert [m.name for m in rest] == ["low"] and not rest.token


def test_log_input_of_a_pandas_dataset(tracking: Server, client: MlflowClient, experiment_id: str) -> None:
    x, y = training_data()
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "target": y})
    dataset = mlflow.data.from_pandas(df, source="s3://bucket/train.csv", name="mini-train", targets="target")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_input(dataset, context="training")
    with mlflow.start_run(experiment_id=experiment_id) as other:
        mlflow.log_param("p", "1")

    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    got = inputs[0].dataset
    assert got.name == "mini-train"
    assert got.digest == dataset.digest
    assert got.source_type == "s3"
    assert "s3://bucket/train.csv" in got.source
    assert "target" in got.schema
    assert '"num_rows": 20' in got.profile
    assert {t.key: t.value for t in inputs[0].tags} == {"mlflow.data.context": "training"}
    assert client.get_run(other.info.run_id).inputs.dataset_inputs == []

    def found(filter_string: str) -> list[str]:
        return [r.info.run_id for r in client.search_runs([experiment_id], filter_string=filter_string)]

    assert found("datasets.name = 'mini-train'") == [run.info.run_id]
    assert found(f"datasets.digest = '{dataset.digest}'") == [run.info.run_id]
    assert found("datasets.context = 'training'") == [run.info.run_id]
    assert found("datasets.name IN ('mini-train', 'other')") == [run.info.run_id]
    assert found("datasets.name = 'nothing'") == []
    # A run with no dataset matches no dataset clause, not even `!=`.
    assert found("datasets.name != 'nothing'") == [run.info.run_id]
    searched = client.search_runs([experiment_id], filter_string="datasets.name = 'mini-train'")[0]
    assert searched.inputs.dataset_inputs[0].dataset.digest == dataset.digest


def test_logging_the_same_dataset_twice_keeps_one_input(client: MlflowClient, experiment_id: str) -> None:
    df = pd.DataFrame({"a": [1, 2, 3]})
    dataset = mlflow.data.from_pandas(df, name="tiny")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="validation")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].tags[0].value == "training"


def test_logged_model_errors(client: MlflowClient, experiment_id: str) -> None:
    missing = "m-" + "0" * 32
    with pytest.raises(MlflowException) as excinfo:
        client.get_logged_model(missing)
    assert error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as excinfo:
        client.create_logged_model(experiment_id, name="bad/name")
    assert error_code(excinfo) == "INVALID_PARAMETER_VALUE"
    model = client.create_logged_model(experiment_id)
    with pytest.raises(MlflowException) as excinfo:
        client.delete_logged_model_tag(model.model_id, "absent")
    assert error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as excinfo:
        client.search_logged_models(experiment_ids=[experiment_id], filter_string="metrics.acc LIKE 'x'")
    assert error_code(excinfo) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as excinfo:
        client.search_logged_models(experiment_ids=[experiment_id], order_by=[{"field_name": "params.x"}])
    assert error_code(excinfo) == "INVALID_PARAMETER_VALUE"


def test_logged_model_routes_answer_like_mlflow(tracking: Server, client: MlflowClient, experiment_id: str) -> None:
    base = tracking.url.rstrip("/") + "/api/2.0/mlflow/logged-models"
    created = requests.post(base, json={"experiment_id": experiment_id, "name": "raw"}, timeout=30)
    assert created.status_code == 200, created.text
    info = created.json()["model"]["info"]
    assert info["status"] == "LOGGED_MODEL_PENDING"
    model_id = info["model_id"]
    patched = requests.patch(f"{base}/{model_id}", json={"model_id": model_id, "status": 2}, timeout=30)
    assert patched.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    missing = requests.post(f"{base}/search", json={}, timeout=30)
    assert missing.status_code == 400
    assert missing.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    no_name = requests.post(
        f"{base}/search", json={"experiment_ids": [experiment_id], "datasets": [{"dataset_digest": "x"}]}, timeout=30
    )
    assert no_name.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    listing = requests.get(f"{base}/{model_id}/artifacts/directories", timeout=30)
    assert listing.status_code == 200, listing.text
    assert listing.json()["root_uri"].endswith(f"/models/{model_id}/artifacts")


def test_log_model_with_registered_model_name(tracking: Server, client: MlflowClient, experiment_id: str, unique: str) -> None:
    x, y = training_data()
    model = LinearRegression().fit(x, y)
    name = f"lm-reg-{unique}"
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
    assert int(info.registered_model_version) == 1
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))
    version = client.get_model_version(name, "1")
    assert info.model_id in version.source
    assert version.run_id == info.run_id


@pytest.mark.cairn_only
def test_outputs_must_name_an_existing_model(tracking: Server, client: MlflowClient, experiment_id: str) -> None:
    run = client.create_run(experiment_id)
    url = tracking.url.rstrip("/") + "/api/2.0/mlflow/runs/outputs"
    body = {"run_id": run.info.run_id, "models": [{"model_id": "m-" + "1" * 32, "step": 0}]}
    response = requests.post(url, json=body, timeout=30)
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.cairn_only
def test_logged_models_are_audited(tracking: Server, client: MlflowClient, experiment_id: str) -> None:
    model = client.create_logged_model(experiment_id, name="audited")
    client.set_logged_model_tags(model.model_id, {"k": "v"})
    client.finalize_logged_model(model.model_id, "READY")
    url = tracking.url.rstrip("/") + "/api/cairn/v1/audit/events"
    mine, after = [], 0
    while after is not None:
        page = requests.get(url, params={"after": after}, timeout=30).json()
        mine += [e["action"] for e in page["events"] if e["entity_id"] == model.model_id]
        after = page.get("next_after")
    assert mine == ["create_logged_model", "set_logged_model_tags", "finalize_logged_model"]
