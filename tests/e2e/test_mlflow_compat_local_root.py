"""A server started with `--default-artifact-root file:///<folder>` (issue 12): clients write a
run's and a logged model's files straight into that folder, and the server lists and serves them
from there, as MLflow's server does — but only inside that folder. Locations elsewhere on disk
(an experiment's `artifact_location`, a symbolic link leading out of the folder) are not read:
the Cairn-only tests show that, since MLflow reads any local path it is given."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import requests
from mlflow.tracking import MlflowClient


def local_path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, make_server, tmp_path_factory):
    """This module's server (replacing the shared one): its default artifact root is a local
    folder, kept as `server.local_root`."""
    root = tmp_path_factory.mktemp("local-root")
    flag = ["--default-artifact-root", root.as_uri()]
    started = make_server(request.param, args=flag, mlflow_args=flag)
    started.local_root = root
    return started


@pytest.fixture
def local_root(tracking):
    return tracking, tracking.local_root


@pytest.fixture
def local_client(client) -> MlflowClient:
    return client


def logged_run(client: MlflowClient, tmp_path: Path, unique: str) -> str:
    experiment_id = client.create_experiment(f"local-root-{unique}")
    run_id = client.create_run(experiment_id).info.run_id
    source = tmp_path / "test.txt"
    source.write_text("hello world")
    client.log_artifact(run_id, str(source))
    client.log_artifact(run_id, str(source), "testDir")
    return run_id


def test_runs_get_file_locations_under_the_root(local_client, local_root, tmp_path, unique):
    _, root = local_root
    run_id = logged_run(local_client, tmp_path, unique)
    uri = local_client.get_run(run_id).info.artifact_uri
    assert uri.startswith("file://")
    # The client wrote the files itself, into the folder the operator named.
    assert (local_path(uri) / "testDir" / "test.txt").read_text() == "hello world"
    assert local_path(uri).resolve().is_relative_to(root.resolve())


def test_listing_reads_the_folder(local_client, local_root, tmp_path, unique):
    server, _ = local_root
    run_id = logged_run(local_client, tmp_path, unique)
    top = requests.get(f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id}, timeout=30)
    assert top.status_code == 200, top.text
    assert top.json()["files"] == [
        {"path": "test.txt", "is_dir": False, "file_size": 11},
        {"path": "testDir", "is_dir": True},
    ]
    sub = requests.get(
        f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "testDir"}, timeout=30
    )
    assert sub.json()["files"] == [{"path": "testDir/test.txt", "is_dir": False, "file_size": 11}]
    query = f'query {{ mlflowListArtifacts(input: {{runId: "{run_id}", path: "testDir"}}) {{ files {{ path isDir fileSize }} }} }}'
    body = requests.post(f"{server.url}/graphql", json={"query": query}, timeout=30).json()
    assert body["data"]["mlflowListArtifacts"]["files"] == [{"path": "testDir/test.txt", "isDir": False, "fileSize": "11"}]


def test_downloads_read_the_folder(local_client, local_root, tmp_path, unique):
    server, _ = local_root
    run_id = logged_run(local_client, tmp_path, unique)
    got = requests.get(f"{server.url}/get-artifact", params={"run_id": run_id, "path": "testDir/test.txt"}, timeout=30)
    assert got.status_code == 200, got.text
    assert got.content == b"hello world"
    assert got.headers["Content-Type"].startswith("text/plain")
    missing = requests.get(f"{server.url}/get-artifact", params={"run_id": run_id, "path": "nope.txt"}, timeout=30)
    assert missing.status_code == 404, missing.text
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_logged_model_files_read_the_folder(local_client, local_root, unique):
    server, _ = local_root
    experiment_id = local_client.create_experiment(f"local-model-{unique}")
    model = local_client.create_logged_model(experiment_id)
    folder = local_path(model.artifact_location)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text(f"model_id: {model.model_id}\n")
    base = f"{server.url}/ajax-api/2.0/mlflow/logged-models/{model.model_id}/artifacts"
    listed = requests.get(f"{base}/directories", timeout=30)
    assert listed.status_code == 200, listed.text
    assert [f["path"] for f in listed.json()["files"]] == ["MLmodel"]
    got = requests.get(f"{base}/files", params={"artifact_file_path": "MLmodel"}, timeout=30)
    assert got.status_code == 200, got.text
    assert model.model_id in got.text


def test_traversal_in_the_path_is_refused(local_client, local_root, tmp_path, unique):
    server, _ = local_root
    run_id = logged_run(local_client, tmp_path, unique)
    for path in ["../../../../etc/passwd", "testDir/../../secret", "/etc/passwd"]:
        got = requests.get(f"{server.url}/get-artifact", params={"run_id": run_id, "path": path}, timeout=30)
        assert got.status_code == 400, (path, got.status_code)
        listed = requests.get(
            f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": path}, timeout=30
        )
        assert listed.status_code == 400, (path, listed.status_code)


@pytest.mark.cairn_only
def test_locations_outside_the_root_are_not_read(local_client, local_root, tmp_path, unique):
    server, _ = local_root
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "key.txt").write_text("private")
    experiment_id = local_client.create_experiment(f"outside-{unique}", artifact_location=secret.as_uri())
    run = local_client.create_run(experiment_id)
    run_dir = local_path(run.info.artifact_uri)
    run_dir.mkdir(parents=True)
    (run_dir / "key.txt").write_text("private")
    got = requests.get(f"{server.url}/get-artifact", params={"run_id": run.info.run_id, "path": "key.txt"}, timeout=30)
    assert got.status_code == 404
    assert b"private" not in got.content
    listed = requests.get(f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id}, timeout=30)
    assert "files" not in listed.json()


@pytest.mark.cairn_only
def test_links_out_of_the_root_are_refused(local_client, local_root, tmp_path, unique):
    server, _ = local_root
    run_id = logged_run(local_client, tmp_path, unique)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "key.txt").write_text("private")
    run_dir = local_path(local_client.get_run(run_id).info.artifact_uri)
    os.symlink(outside, run_dir / "escape")
    os.symlink(outside / "key.txt", run_dir / "key.txt")
    for path in ["escape/key.txt", "key.txt"]:
        got = requests.get(f"{server.url}/get-artifact", params={"run_id": run_id, "path": path}, timeout=30)
        assert got.status_code == 400, (path, got.status_code)
        assert b"private" not in got.content
        assert "outside the server's artifact root" in got.json()["message"]
    listed = requests.get(f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id}, timeout=30)
    assert [f["path"] for f in listed.json()["files"]] == ["test.txt", "testDir"]
