"""`mlflow.sklearn.autolog()` end to end: fitting a tiny model inside a run records the
estimator's params, training metrics and tags, the training dataset as a run input, and a
logged model (with the training metrics linked to it) that loads back and predicts the same.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LinearRegression, LogisticRegression

from servers import Server

ROWS = 20


@pytest.fixture
def autolog(tracking: Server):
    """sklearn autologging for one test, switched off again afterwards."""
    mlflow.sklearn.autolog()
    yield
    mlflow.sklearn.autolog(disable=True)


def test_autolog_records_a_regression(autolog, client: MlflowClient, experiment_id: str) -> None:
    x = np.arange(ROWS * 2, dtype=float).reshape(ROWS, 2)
    y = x @ np.array([0.5, 1.0]) - 2.0
    with mlflow.start_run(experiment_id=experiment_id) as run:
        model = LinearRegression().fit(x, y)

    got = client.get_run(run.info.run_id)
    assert got.data.params["fit_intercept"] == "True"
    assert got.data.tags["estimator_name"] == "LinearRegression"
    assert got.data.tags["estimator_class"] == "sklearn.linear_model._base.LinearRegression"
    assert got.data.metrics["training_r2_score"] == pytest.approx(1.0)
    assert "training_mean_squared_error" in got.data.metrics

    contexts = [t.value for i in got.inputs.dataset_inputs for t in i.tags if t.key == "mlflow.data.context"]
    assert contexts == ["train"]

    [output] = got.outputs.model_outputs
    logged = client.get_logged_model(output.model_id)
    assert logged.source_run_id == run.info.run_id
    assert logged.status == LoggedModelStatus.READY
    assert logged.params["fit_intercept"] == "True"
    linked = {m.key for m in logged.metrics}
    assert "training_r2_score" in linked
    found = client.search_logged_models(experiment_ids=[experiment_id], filter_string="metrics.training_r2_score > 0.99")
    assert [m.model_id for m in found] == [output.model_id]

    loaded = mlflow.pyfunc.load_model(f"models:/{output.model_id}")
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))


def test_autolog_records_a_classifier(autolog, client: MlflowClient, experiment_id: str) -> None:
    x = np.linspace(0.0, 1.0, ROWS).reshape(ROWS, 1)
    y = (x[:, 0] > 0.5).astype(int)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        model = LogisticRegression().fit(x, y)

    got = client.get_run(run.info.run_id)
    assert got.data.tags["estimator_name"] == "LogisticRegression"
    assert got.data.params["C"] == "1.0"
    assert 0.0 <= got.data.metrics["training_accuracy_score"] <= 1.0
    [output] = got.outputs.model_outputs
    loaded = mlflow.sklearn.load_model(f"models:/{output.model_id}")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
