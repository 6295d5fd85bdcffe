"""The tracking server's artifact routes (issue 12, group 2): `GET /get-artifact`,
`GET /model-versions/get-artifact` and `GET /api/2.0/mlflow/artifacts/list` (and its UI twin).
Downloads are attachments named after the file, typed as MLflow types them (`text/plain` for
text files and `MLmodel`, `image/png`, `application/pdf`, `application/octet-stream` for
anything unknown); Cairn never answers `text/html` for an artifact."""

from __future__ import annotations

import cgi
import uuid

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient

EXPECTED_TYPES = [
    ("a.txt", "text/plain"),
    ("b.pkl", "application/octet-stream"),
    ("c.png", "image/png"),
    ("d.pdf", "application/pdf"),
    ("MLmodel", "text/plain"),
    ("mlproject", "text/plain"),
]


def filename_of(reply: requests.Response) -> str:
    _, params = cgi.parse_header(reply.headers["Content-Disposition"])
    return params["filename"]


@pytest.mark.parametrize(("filename", "expected"), EXPECTED_TYPES)
def test_get_artifact_types_files_as_mlflow_does(
    client: MlflowClient, tracking, experiment_id: str, tmp_path, filename: str, expected: str
):
    path = tmp_path / filename
    path.write_bytes(b"content of " + filename.encode())
    run_id = client.create_run(experiment_id).info.run_id
    client.log_artifact(run_id, str(path))
    reply = requests.get(f"{tracking.url}/get-artifact", params={"run_id": run_id, "path": filename}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.content == b"content of " + filename.encode()
    assert reply.headers["Content-Type"].split(";")[0] == expected
    assert filename_of(reply) == filename
    assert reply.headers["X-Content-Type-Options"] == "nosniff"

    proxied = requests.get(
        f"{tracking.url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{filename}",
        timeout=60,
    )
    assert proxied.status_code == 200, proxied.text
    assert proxied.headers["Content-Type"].split(";")[0] == expected
    assert filename_of(proxied) == filename


def test_get_artifact_accepts_run_uuid_and_reports_missing_runs(client: MlflowClient, tracking, experiment_id: str):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_text(run_id, "x", "dir/f.txt")
    reply = requests.get(f"{tracking.url}/get-artifact", params={"run_uuid": run_id, "path": "dir/f.txt"}, timeout=60)
    assert reply.status_code == 200 and reply.text == "x"
    missing = requests.get(
        f"{tracking.url}/get-artifact", params={"run_id": uuid.uuid4().hex, "path": "f.txt"}, timeout=60
    )
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.cairn_only
def test_html_artifacts_are_never_served_as_html(client: MlflowClient, tracking, experiment_id: str):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_text(run_id, "<script>alert(1)</script>", "page.html")
    for url, params in [
        (f"{tracking.url}/get-artifact", {"run_id": run_id, "path": "page.html"}),
        (f"{tracking.url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/page.html", {}),
    ]:
        reply = requests.get(url, params=params, timeout=60)
        assert reply.status_code == 200, reply.text
        assert reply.headers["Content-Type"].split(";")[0] == "text/plain"
        assert reply.headers["Content-Disposition"].startswith("attachment")
        assert reply.headers["Content-Security-Policy"] == "sandbox"


def registered_files(client: MlflowClient, name: str, source_of) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("flavors: {}\n", "model/MLmodel")
        mlflow.log_text("hello", "model/data/a.txt")
    client.create_registered_model(name)
    client.create_model_version(name, source_of(run), run.info.run_id)


def assert_version_files_served(tracking, name: str) -> None:
    url = f"{tracking.url}/model-versions/get-artifact"
    reply = requests.get(url, params={"name": name, "version": "1", "path": "data/a.txt"}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.text == "hello"
    assert reply.headers["Content-Type"].split(";")[0] == "text/plain"
    assert filename_of(reply) == "a.txt"
    reply = requests.get(url, params={"name": name, "version": "1", "path": "MLmodel"}, timeout=60)
    assert reply.status_code == 200 and reply.text == "flavors: {}\n"
    missing = requests.get(url, params={"name": name, "version": "7", "path": "MLmodel"}, timeout=60)
    assert missing.status_code == 404


def test_model_version_artifacts_are_served(client: MlflowClient, tracking, unique: str):
    name = f"mv-artifact-{unique}"
    registered_files(client, name, lambda run: f"{run.info.artifact_uri}/model")
    assert_version_files_served(tracking, name)


@pytest.mark.cairn_only
def test_model_version_artifacts_from_a_runs_uri_are_served(client: MlflowClient, tracking, unique: str):
    # MLflow's server answers 500 here: it resolves `runs:/` with its own tracking URI.
    name = f"mv-runs-uri-{unique}"
    registered_files(client, name, lambda run: f"runs:/{run.info.run_id}/model")
    assert_version_files_served(tracking, name)


@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"])
def test_artifacts_list_names_paths_from_the_run_root(
    client: MlflowClient, tracking, experiment_id: str, prefix: str
):
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    client.log_text(run_id, "1", "top.txt")
    client.log_text(run_id, "22", "dir/a.txt")
    client.log_text(run_id, "333", "dir/sub/b.txt")
    url = f"{tracking.url}{prefix}/artifacts/list"

    root = requests.get(url, params={"run_id": run_id}, timeout=60).json()
    assert root["root_uri"] == run.info.artifact_uri
    assert root["files"] == [
        {"path": "dir", "is_dir": True},
        {"path": "top.txt", "is_dir": False, "file_size": "1"},
    ] or root["files"] == [
        {"path": "dir", "is_dir": True},
        {"path": "top.txt", "is_dir": False, "file_size": 1},
    ]
    listed = requests.get(url, params={"run_id": run_id, "path": "dir"}, timeout=60).json()
    assert [(f["path"], f["is_dir"]) for f in listed["files"]] == [("dir/a.txt", False), ("dir/sub", True)]
    empty = requests.get(url, params={"run_id": run_id, "path": "nothing"}, timeout=60).json()
    assert empty.get("files", []) == []
    assert [f.path for f in client.list_artifacts(run_id, "dir/sub")] == ["dir/sub/b.txt"]
