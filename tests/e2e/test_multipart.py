"""The real client's large-file path, `MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD`, on a local folder and
on an S3-protocol server (moto).

Cairn serves MLflow's multipart routes on every destination: part URLs point back at the server,
parts stream into staging, `complete` assembles them into one content-addressed blob. Real MLflow
declines multipart on a local destination (501; the client falls back to one PUT) and hands out
presigned bucket URLs on S3, so the round trips hold against both servers; the checks that the
multipart routes really carried the upload (the server's request log, the staging area) are
Cairn's own.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from servers import MotoServer, Server
from test_artifacts import MIB, REQUEST_LOG, Destination, sha256_file
MPU_API = "/api/2.0/mlflow-artifacts/mpu"


def route_hits(server: Server, route: str) -> int:
    """How many requests to `route` (a matched-route fragment) the server answered with 200."""
    lines = server.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    return sum(1 for line in lines if route in line and "status=200" in line)


def use_multipart(monkeypatch: pytest.MonkeyPatch, *, minimum: int, chunk: int) -> None:
    """Turn the client's proxied multipart upload on for files of at least `minimum` bytes."""
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(minimum))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(chunk))


@pytest.fixture(scope="module", params=["local", "s3"])
def mpu_destination(request: pytest.FixtureRequest, make_server, reference: bool) -> Destination:
    env = {"RUST_LOG": REQUEST_LOG}
    if request.param == "local":
        server = make_server("sqlite", env=env)
        root = server.workdir / ("artifacts" if reference else "data/artifacts")
        return Destination(kind="local", server=server, root=root)
    moto: MotoServer = request.getfixturevalue("moto")
    bucket, prefix = moto.create_bucket(), "cairn/mpu"
    server = make_server("sqlite", artifacts_destination=f"s3://{bucket}/{prefix}", env={**moto.server_env(), **env})
    return Destination(kind="s3", server=server, moto=moto, bucket=bucket, prefix=prefix)


@pytest.fixture
def mpu(mpu_destination: Destination, monkeypatch: pytest.MonkeyPatch) -> Destination:
    """`mpu_destination`, with the fluent API (which resolves `mlflow-artifacts:/`) pointed at it."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mpu_destination.server.url)
    mlflow.set_tracking_uri(mpu_destination.server.url)
    return mpu_destination


def random_file(path: Path, size: int) -> str:
    """Writes `size` random bytes to `path` and returns their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(MIB, left))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def test_large_file_goes_up_in_parts_and_round_trips(
    mpu: Destination, monkeypatch: pytest.MonkeyPatch, unique: str, tmp_path: Path
) -> None:
    # 5 MiB chunks (S3's smallest part) on a file that does not divide evenly: five parts.
    size = 23 * MIB + 12_345
    use_multipart(monkeypatch, minimum=5 * MIB, chunk=5 * MIB)
    client = MlflowClient(tracking_uri=mpu.server.url)
    run_id = client.create_run(client.create_experiment(f"mpu-{unique}")).info.run_id
    (tmp_path / "up").mkdir()
    big = tmp_path / "up" / "weights.bin"
    want = random_file(big, size)
    cairn = mpu.server.kind == "cairn"
    before = (route_hits(mpu.server, "mpu/complete/"), route_hits(mpu.server, "mpu/parts/")) if cairn else None

    client.log_artifact(run_id, str(big), artifact_path="model")

    repo = get_artifact_repository(client.get_run(run_id).info.artifact_uri)
    assert [(f.path, f.file_size) for f in repo.list_artifacts("model")] == [("model/weights.bin", size)]
    out = Path(repo.download_artifacts("model/weights.bin", str(tmp_path)))
    assert sha256_file(out) == want
    if cairn:
        assert route_hits(mpu.server, "mpu/complete/") == before[0] + 1, "the upload went through mpu/complete"
        assert route_hits(mpu.server, "mpu/parts/") == before[1] + 5, "five part requests"
        native = requests.get(f"{mpu.server.url}/api/cairn/v1/runs/{run_id}/artifacts", timeout=30).json()
        assert [(f["path"], f["size"], f["digest"]) for f in native["files"]] == [("model/weights.bin", size, want)]
        assert not mpu.staging_keys(), "the parts are removed once the file is recorded"


@pytest.mark.cairn_only
def test_aborted_upload_leaves_nothing_and_cannot_complete(mpu: Destination, unique: str) -> None:
    """What the client does when a part fails: abort. Over raw HTTP, since the client only aborts
    on errors."""
    client = MlflowClient(tracking_uri=mpu.server.url)
    experiment_id = client.create_experiment(f"mpu-abort-{unique}")
    run_id = client.create_run(experiment_id).info.run_id
    route = f"{experiment_id}/{run_id}/artifacts"
    body = {"path": "/home/me/part.bin", "num_parts": 2}
    created = requests.post(f"{mpu.server.url}{MPU_API}/create/{route}", json=body, timeout=30)
    assert created.status_code == 200, created.text
    upload = created.json()
    first = upload["credentials"][0]
    assert first["url"] == f"{mpu.server.url}{MPU_API}/parts/{upload['upload_id']}/1"
    part = requests.put(first["url"], data=os.urandom(1000), headers=first.get("headers", {}), timeout=30)
    assert part.status_code == 200 and part.headers["ETag"], part.text
    assert mpu.staging_keys(), "the part is staged"

    ids = {"path": "/home/me/part.bin", "upload_id": upload["upload_id"]}
    aborted = requests.post(f"{mpu.server.url}{MPU_API}/abort/{route}", json=ids, timeout=30)
    assert aborted.status_code == 200, aborted.text
    assert not mpu.staging_keys()
    parts = [{"part_number": 1, "etag": part.headers["ETag"]}]
    late = requests.post(f"{mpu.server.url}{MPU_API}/complete/{route}", json={**ids, "parts": parts}, timeout=30)
    assert late.status_code == 404 and late.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", late.text
    assert client.list_artifacts(run_id) == []
