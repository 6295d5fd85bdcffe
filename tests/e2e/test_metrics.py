"""Metrics through the real client: steps, timestamps, batches, special values, history paging."""

import math
import sys

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag


def history(client, run_id, key):
    """(step, timestamp, value) triples, in the order the server returned them."""
    return [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key)]


def test_steps_and_timestamps_round_trip(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    points = [(0, 1000, 1.0), (1, 1001, 0.5), (2, 1002, 0.25), (2, 1003, 0.2)]
    for step, ts, value in points:
        client.log_metric(run_id, "loss", value, timestamp=ts, step=step)
    # MLflow returns history ordered by timestamp, then step, then value.
    assert history(client, run_id, "loss") == points
    assert client.get_metric_history(run_id, "never-logged") == []


def test_latest_value_is_the_highest_step_not_the_last_logged(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "m", 10.0, timestamp=5000, step=10)
    client.log_metric(run_id, "m", 3.0, timestamp=9000, step=3)  # logged later, earlier step
    assert client.get_run(run_id).data.metrics["m"] == 10.0
    # Same step: the later timestamp wins.
    client.log_metric(run_id, "m", 11.0, timestamp=6000, step=10)
    assert client.get_run(run_id).data.metrics["m"] == 11.0


def test_identical_points_are_stored_once(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    for _ in range(3):
        client.log_metric(run_id, "dup", 1.5, timestamp=42, step=7)
    assert history(client, run_id, "dup") == [(7, 42, 1.5)]


def test_nan_and_infinities(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "nan", float("nan"), timestamp=1, step=0)
    client.log_metric(run_id, "pinf", float("inf"), timestamp=1, step=0)
    client.log_metric(run_id, "ninf", float("-inf"), timestamp=1, step=0)
    client.log_metric(run_id, "big", 1.7976931348623157e308, timestamp=1, step=0)
    client.log_metric(run_id, "tiny", -5e-324, timestamp=1, step=0)

    # MLflow's SQL store answers infinities as the largest finite double, keeping the sign;
    # clients written against it expect exactly that.
    metrics = client.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["pinf"] == sys.float_info.max
    assert metrics["ninf"] == -sys.float_info.max
    assert metrics["big"] == 1.7976931348623157e308
    assert metrics["tiny"] == -5e-324
    assert math.isnan(client.get_metric_history(run_id, "nan")[0].value)
    assert client.get_metric_history(run_id, "ninf")[0].value == -sys.float_info.max


def test_log_batch(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    metrics = [Metric("acc", 0.1 * i, 1000 + i, i) for i in range(10)]
    params = [Param(f"p{i}", str(i)) for i in range(5)]
    tags = [RunTag("source", "batch"), RunTag("note", "ünïcödé")]
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)

    data = client.get_run(run_id).data
    assert data.params == {f"p{i}": str(i) for i in range(5)}
    assert data.tags["source"] == "batch"
    assert data.tags["note"] == "ünïcödé"
    assert data.metrics["acc"] == pytest.approx(0.9)
    assert history(client, run_id, "acc") == [(i, 1000 + i, 0.1 * i) for i in range(10)]


def test_log_batch_at_the_limits(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric("m", float(i), 1, i) for i in range(900)],
        params=[Param(f"p{i}", "v") for i in range(50)],
        tags=[RunTag(f"t{i}", "v") for i in range(50)],
    )
    data = client.get_run(run_id).data
    assert len(data.params) == 50
    assert len(client.get_metric_history(run_id, "m")) == 900


def test_fluent_log_metrics_with_step_and_timestamp(tracking, unique):
    mlflow.set_experiment(f"fluent-metrics-{unique}")
    with mlflow.start_run() as run:
        for step in range(5):
            mlflow.log_metrics({"a": step * 1.0, "b": -step * 1.0}, step=step, timestamp=2000 + step)
    client = mlflow.MlflowClient()
    assert history(client, run.info.run_id, "a") == [(s, 2000 + s, s * 1.0) for s in range(5)]
    assert client.get_run(run.info.run_id).data.metrics == {"a": 4.0, "b": -4.0}


def test_history_longer_than_one_client_page(client, experiment_id):
    # The client asks for 25,000 points per page and follows `next_page_token`, so 25,500
    # points take two pages.
    run_id = client.create_run(experiment_id).info.run_id
    total = 25_500
    for start in range(0, total, 1000):
        stop = min(start + 1000, total)
        client.log_batch(run_id, metrics=[Metric("long", float(i), 10_000 + i, i) for i in range(start, stop)])
    got = client.get_metric_history(run_id, "long")
    assert len(got) == total
    assert [m.step for m in got] == list(range(total))


def test_history_pagination_over_http(api, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_batch(run_id, metrics=[Metric("p", float(i), 100 + i, i) for i in range(7)])

    steps, token, pages = [], None, 0
    while True:
        params = {"run_id": run_id, "metric_key": "p", "max_results": 3}
        if token:
            params["page_token"] = token
        body = api.get("metrics/get-history", params=params).json()
        steps += [int(m["step"]) for m in body.get("metrics", [])]
        pages += 1
        token = body.get("next_page_token")
        if not token:
            break
    assert steps == list(range(7))
    assert pages == 3


def test_history_bulk_interval(api, client, experiment_id):
    runs = [client.create_run(experiment_id).info.run_id for _ in range(2)]
    for run_id in runs:
        client.log_batch(run_id, metrics=[Metric("curve", float(s), 500 + s, s) for s in range(10)])

    r = api.get("metrics/get-history-bulk-interval", params={"run_ids": runs, "metric_key": "curve", "max_results": 100})
    assert r.status_code == 200, r.text
    got = r.json()["metrics"]
    for run_id in runs:
        assert sorted(int(m["step"]) for m in got if m["run_id"] == run_id) == list(range(10))

    r = api.get(
        "metrics/get-history-bulk-interval",
        params={"run_ids": runs[0], "metric_key": "curve", "start_step": 2, "end_step": 4, "max_results": 100},
    )
    assert r.status_code == 200, r.text
    assert sorted(int(m["step"]) for m in r.json()["metrics"]) == [2, 3, 4]
