"""The UI prefix `/ajax-api/2.0/mlflow/...` (issue 12, group 1): every REST route answers there
too, and four routes answer only there — `metrics/get-history-bulk` (with MLflow's validation
messages and `max_results` over the whole answer), `experiments/search-datasets`,
`upload-artifact` (10 MB at most) and `logged-models/<id>/artifacts/files`."""

from __future__ import annotations

import uuid

import mlflow
import pytest
import requests
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.tracking import MlflowClient

AJAX = "/ajax-api/2.0/mlflow"


def ajax_get(tracking, path: str, **params) -> requests.Response:
    return requests.get(f"{tracking.url}{AJAX}/{path}", params=params, timeout=60)


def assert_invalid(reply: requests.Response, fragment: str) -> None:
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert fragment in body["message"], body


def test_rest_routes_answer_under_the_ui_prefix_too(client: MlflowClient, tracking, experiment_id: str):
    run = client.create_run(experiment_id)
    reply = ajax_get(tracking, "runs/get", run_id=run.info.run_id)
    assert reply.status_code == 200, reply.text
    assert reply.json()["run"]["info"]["run_id"] == run.info.run_id
    reply = requests.post(
        f"{tracking.url}{AJAX}/runs/search", json={"experiment_ids": [experiment_id]}, timeout=60
    )
    assert [r["info"]["run_id"] for r in reply.json()["runs"]] == [run.info.run_id]
    reply = requests.get(f"{tracking.url}/ajax-api/2.0/mlflow-artifacts/artifacts", timeout=60)
    assert reply.status_code == 200, reply.text


def test_history_bulk_rejects_what_mlflow_rejects(tracking):
    assert_invalid(ajax_get(tracking, "metrics/get-history-bulk", metric_key="k"), "must specify at least one run_id")
    too_many = [f"id_{i}" for i in range(101)]
    assert_invalid(
        ajax_get(tracking, "metrics/get-history-bulk", run_id=too_many, metric_key="k"),
        "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 101 run_ids.",
    )
    assert_invalid(ajax_get(tracking, "metrics/get-history-bulk", run_id=["123"]), "must specify a metric_key")


def test_history_bulk_orders_by_run_then_time_step_value(client: MlflowClient, tracking, experiment_id: str):
    runs = sorted(client.create_run(experiment_id).info.run_id for _ in range(3))
    points = [(1, 2, 10.0), (1, 3, 12.0), (1, 3, 11.0), (2, 3, 12.0), (0, 9, -1.0)]
    for i, run_id in enumerate(runs[:2]):
        for timestamp, step, value in points:
            client.log_metric(run_id, "m", value + i, timestamp=timestamp, step=step)
    client.log_metric(runs[0], "other", 5.0, timestamp=1, step=1)

    reply = ajax_get(tracking, "metrics/get-history-bulk", run_id=list(reversed(runs)), metric_key="m")
    assert reply.status_code == 200, reply.text
    ordered = sorted(points)
    expected = [
        {"key": "m", "timestamp": t, "step": s, "value": v + i, "run_id": run_id}
        for i, run_id in enumerate(runs[:2])
        for t, s, v in ordered
    ]
    assert reply.json()["metrics"] == expected

    limited = ajax_get(tracking, "metrics/get-history-bulk", run_id=runs, metric_key="m", max_results=7)
    assert limited.json()["metrics"] == expected[:7], "the limit counts points over all runs"
    unknown = ajax_get(tracking, "metrics/get-history-bulk", run_id=[uuid.uuid4().hex], metric_key="m")
    assert unknown.status_code == 200 and unknown.json()["metrics"] == []


def test_history_bulk_is_only_under_the_ui_prefix(tracking, client: MlflowClient, experiment_id: str):
    run_id = client.create_run(experiment_id).info.run_id
    reply = requests.get(
        f"{tracking.url}/api/2.0/mlflow/metrics/get-history-bulk",
        params={"run_id": run_id, "metric_key": "m"},
        timeout=60,
    )
    assert reply.status_code == 404


def test_search_datasets_lists_each_dataset_and_context_once(client: MlflowClient, tracking, experiment_id: str):
    url = f"{tracking.url}{AJAX}/experiments/search-datasets"
    assert_invalid(requests.post(url, json={}, timeout=60), "must specify at least one experiment_id.")
    assert_invalid(
        requests.post(url, json={"experiment_ids": [str(i) for i in range(21)]}, timeout=60),
        "SearchDatasets request cannot specify more than 20 experiment_ids.",
    )
    assert requests.post(url, json={"experiment_ids": [experiment_id]}, timeout=60).json() == {}

    def dataset_input(name: str, digest: str, context: str | None) -> DatasetInput:
        tags = [InputTag(key="mlflow.data.context", value=context)] if context else []
        return DatasetInput(Dataset(name=name, digest=digest, source_type="local", source="{}"), tags=tags)

    for _ in range(2):
        run_id = client.create_run(experiment_id).info.run_id
        client.log_inputs(run_id, [dataset_input("train", "d1", "training")])
    client.log_inputs(run_id, [dataset_input("raw", "d0", None)])

    reply = requests.post(url, json={"experiment_ids": [experiment_id]}, timeout=60)
    assert reply.status_code == 200, reply.text
    summaries = sorted(reply.json()["dataset_summaries"], key=lambda s: s["name"])
    assert summaries == [
        {"experiment_id": experiment_id, "name": "raw", "digest": "d0"},
        {"experiment_id": experiment_id, "name": "train", "digest": "d1", "context": "training"},
    ]


def test_upload_artifact_writes_into_the_run(client: MlflowClient, tracking, experiment_id: str):
    run_id = client.create_run(experiment_id).info.run_id
    url = f"{tracking.url}{AJAX}/upload-artifact"
    reply = requests.post(url, params={"run_uuid": run_id, "path": "notes/a.txt"}, data=b"hello", timeout=60)
    assert reply.status_code == 200, reply.text
    assert [f.path for f in client.list_artifacts(run_id, "notes")] == ["notes/a.txt"]
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes/a.txt")
    with open(local, "rb") as f:
        assert f.read() == b"hello"

    assert_invalid(requests.post(url, params={"path": "a"}, data=b"x", timeout=60), "Request must specify run_uuid.")
    assert_invalid(requests.post(url, params={"run_uuid": run_id}, data=b"x", timeout=60), "Request must specify path.")
    assert_invalid(
        requests.post(url, params={"run_uuid": run_id, "path": "e"}, data=b"", timeout=60),
        "Request must specify data.",
    )
    # MLflow's words for a path that climbs out of the run; clients look for them.
    assert_invalid(
        requests.post(url, params={"run_uuid": run_id, "path": "../a.txt"}, data=b"x", timeout=60),
        "Invalid path",
    )
    big = b"0" * (10 * 1024 * 1024 + 1)
    assert_invalid(
        requests.post(url, params={"run_uuid": run_id, "path": "big"}, data=big, timeout=60),
        "Artifact size is too large. Max size is 10MB.",
    )
    missing = requests.post(url, params={"run_uuid": uuid.uuid4().hex, "path": "a"}, data=b"x", timeout=60)
    assert missing.status_code == 404, missing.text


def test_logged_model_files_are_downloaded_by_path(client: MlflowClient, tracking, experiment_id: str, tmp_path):
    model = client.create_logged_model(experiment_id)
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    client.log_model_artifacts(model.model_id, str(tmp_path))
    url = f"{tracking.url}{AJAX}/logged-models/{model.model_id}/artifacts/files"
    reply = requests.get(url, params={"artifact_file_path": "MLmodel"}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.text == "flavors: {}\n"
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert reply.headers["Content-Disposition"].startswith("attachment")

    missing = requests.get(url, timeout=60)
    assert missing.status_code == 400
    assert missing.json()["error_code"] == "BAD_REQUEST"
    assert "artifact_file_path" in missing.json()["message"]


@pytest.mark.cairn_only
def test_ui_only_routes_are_not_under_the_rest_prefix(tracking):
    for path in ["experiments/search-datasets", "upload-artifact"]:
        assert requests.post(f"{tracking.url}/api/2.0/mlflow/{path}", json={}, timeout=60).status_code == 404
