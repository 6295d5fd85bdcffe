"""Errors the real client surfaces as `MlflowException`, with MLflow's error codes."""

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

MISSING_RUN = "0123456789abcdef0123456789abcdef"
MISSING_EXPERIMENT = "987654321"


def error_code(call):
    with pytest.raises(MlflowException) as e:
        call()
    return e.value.error_code


def test_unknown_run(client):
    assert error_code(lambda: client.get_run(MISSING_RUN)) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(lambda: client.log_param(MISSING_RUN, "k", "v")) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(lambda: client.log_metric(MISSING_RUN, "k", 1.0)) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(lambda: client.set_tag(MISSING_RUN, "k", "v")) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(lambda: client.set_terminated(MISSING_RUN)) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(lambda: client.delete_run(MISSING_RUN)) == "RESOURCE_DOES_NOT_EXIST"
    # Not asserted: the history of an unknown run, which MLflow's SQL store answers with an
    # empty list rather than an error.


def test_unknown_experiment(client):
    assert error_code(lambda: client.get_experiment(MISSING_EXPERIMENT)) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(lambda: client.delete_experiment(MISSING_EXPERIMENT)) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(lambda: client.rename_experiment(MISSING_EXPERIMENT, "x")) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(lambda: client.create_run(MISSING_EXPERIMENT)) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(lambda: client.set_experiment_tag(MISSING_EXPERIMENT, "k", "v")) == "RESOURCE_DOES_NOT_EXIST"


def test_non_numeric_experiment_id(client):
    assert error_code(lambda: client.get_experiment("not-a-number")) == "INVALID_PARAMETER_VALUE"


def test_over_long_keys(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    long_key = "k" * 251
    assert error_code(lambda: client.log_param(run_id, long_key, "v")) == "INVALID_PARAMETER_VALUE"
    assert error_code(lambda: client.set_tag(run_id, long_key, "v")) == "INVALID_PARAMETER_VALUE"
    assert error_code(lambda: client.log_metric(run_id, long_key, 1.0)) == "INVALID_PARAMETER_VALUE"
    # 250 characters is still fine.
    client.log_param(run_id, "k" * 250, "v")
    data = client.get_run(run_id).data
    assert data.params == {"k" * 250: "v"}
    assert data.metrics == {}


def test_keys_that_resolve_to_other_paths(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    for key in ["../escape", "a/../../b", "/absolute"]:
        assert error_code(lambda: client.log_param(run_id, key, "v")) == "INVALID_PARAMETER_VALUE", key
    assert client.get_run(run_id).data.params == {}


def test_experiment_name_limits(client, unique):
    assert error_code(lambda: client.create_experiment("")) == "INVALID_PARAMETER_VALUE"
    assert error_code(lambda: client.create_experiment("n" * 501)) == "INVALID_PARAMETER_VALUE"


def test_batch_limits(api, client, experiment_id):
    # The client splits large batches itself, so the server's limits are reached over raw HTTP.
    run_id = client.create_run(experiment_id).info.run_id

    def metrics(n):
        return [{"key": "m", "value": 1.0, "timestamp": 1, "step": i} for i in range(n)]

    def kvs(prefix, n):
        return [{"key": f"{prefix}{i}", "value": "v"} for i in range(n)]

    for body in [
        {"metrics": metrics(1001)},
        {"params": kvs("p", 101)},
        {"tags": kvs("t", 101)},
        {"metrics": metrics(901), "params": kvs("p", 100)},
    ]:
        r = api.post("runs/log-batch", json={"run_id": run_id, **body})
        assert r.status_code == 400, r.text
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    # Nothing from the rejected batches was written.
    data = client.get_run(run_id).data
    assert (data.metrics, data.params) == ({}, {})
    assert client.get_metric_history(run_id, "m") == []
    # Exactly at the limits is accepted.
    r = api.post("runs/log-batch", json={"run_id": run_id, "metrics": metrics(900), "params": kvs("p", 100)})
    assert r.status_code == 200, r.text
    assert len(client.get_metric_history(run_id, "m")) == 900


def test_batch_with_a_conflicting_param_writes_nothing(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "fixed", "1")
    code = error_code(
        lambda: client.log_batch(
            run_id, metrics=[Metric("m", 1.0, 1, 0)], params=[Param("fixed", "2")], tags=[RunTag("t", "v")]
        )
    )
    assert code == "INVALID_PARAMETER_VALUE"
    data = client.get_run(run_id).data
    assert data.params == {"fixed": "1"}
    assert "t" not in data.tags


def test_duplicate_param_keys_in_one_batch(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    code = error_code(lambda: client.log_batch(run_id, params=[Param("k", "1"), Param("k", "2")]))
    assert code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run_id).data.params == {}


def test_negative_timestamp(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    assert error_code(lambda: client.log_metric(run_id, "m", 1.0, timestamp=-1)) == "INVALID_PARAMETER_VALUE"
