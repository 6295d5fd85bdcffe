"""Proxied artifacts through the real client: log_artifact, log_artifacts with nested folders,
log_text/log_dict/log_image, list and download (file and folder), on a local folder and on an
S3-protocol server (moto); a file over 100 MB in bounded server memory, by plain PUT and by the
client's multipart path; dedup and `cairn gc`; path traversal and a cut-off upload over raw HTTP.

Listing below the root goes through the run's own `mlflow-artifacts:/` repository: the client's
`list_artifacts(run_id, path)` also searches logged models named like `path`, an API Cairn does
not serve yet."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from servers import MotoServer, Server, cairn_cli, proc_status_kib, reset_peak_rss

ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
MIB = 1024 * 1024
# Server log filter that adds one line per request (matched route, status) to the warnings, so a
# test can tell which routes carried an upload.
REQUEST_LOG = "warn,tower_http=info,cairn_server=info"


# ---------------------------------------------------------------------------------------------
# Fixtures: one server per artifact destination, shared by the tests of this module.


@dataclass
class Destination:
    """A running server and a way to look at the blobs its artifact destination holds."""

    kind: str  # "local" or "s3"
    server: Server
    root: Path | None = None  # the local destination folder
    moto: MotoServer | None = None
    bucket: str = ""
    prefix: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.kind == "s3" else str(self.root)

    def blob_keys(self) -> set[str]:
        """Every object under the destination's `blobs/` (Cairn's content-addressed layout)."""
        if self.kind == "local":
            base = self.root / "blobs"
            return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()} if base.exists() else set()
        keys: set[str] = set()
        pages = self.moto.client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/blobs/"):
            keys.update(obj["Key"].removeprefix(f"{self.prefix}/blobs/") for obj in page.get("Contents", []))
        return keys

    def cli_store_args(self) -> list[str]:
        """`cairn gc` / `cairn artifacts` / `cairn audit` flags naming this server's storage."""
        return ["--backend-store-uri", self.server.backend_uri, "--data-dir", str(self.server.workdir / "data")]

    def staging_keys(self) -> set[str]:
        """Objects under `staging/`, where uploads larger than one part are assembled."""
        if self.kind == "local":
            base = self.root / "staging"
            return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()} if base.exists() else set()
        pages = self.moto.client().get_paginator("list_objects_v2")
        return {
            obj["Key"]
            for page in pages.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/staging/")
            for obj in page.get("Contents", [])
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """Runs a `cairn` subcommand with this destination's S3 environment, if any."""
        return cairn_cli(*args, env=self.moto.server_env() if self.moto else None)


@pytest.fixture(scope="module", params=["local", "s3"])
def destination(request: pytest.FixtureRequest, make_server, reference: bool) -> Destination:
    log = {"RUST_LOG": REQUEST_LOG}
    if request.param == "local":
        server = make_server("sqlite", env=log)
        root = server.workdir / ("artifacts" if reference else "data/artifacts")
        return Destination(kind="local", server=server, root=root)
    moto: MotoServer = request.getfixturevalue("moto")
    bucket, prefix = moto.create_bucket(), "cairn/artifacts"
    server = make_server("sqlite", artifacts_destination=f"s3://{bucket}/{prefix}", env={**moto.server_env(), **log})
    return Destination(kind="s3", server=server, moto=moto, bucket=bucket, prefix=prefix)


@pytest.fixture
def dest(destination: Destination, monkeypatch: pytest.MonkeyPatch) -> Destination:
    """`destination`, with the fluent API (which resolves `mlflow-artifacts:/`) pointed at it."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", destination.server.url)
    mlflow.set_tracking_uri(destination.server.url)
    return destination


@pytest.fixture
def dest_client(dest: Destination) -> MlflowClient:
    return MlflowClient(tracking_uri=dest.server.url)


@pytest.fixture
def dest_run(dest_client: MlflowClient, unique: str) -> tuple[str, str]:
    """(experiment id, run id) of a fresh run on `dest`."""
    experiment_id = dest_client.create_experiment(f"art-{unique}")
    return experiment_id, dest_client.create_run(experiment_id).info.run_id


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# The client's artifact API.


def exercise_artifact_api(client: MlflowClient, experiment_id: str, tmp_path: Path) -> None:
    run_id = client.create_run(experiment_id).info.run_id
    assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:/")

    single = tmp_path / "notes.txt"
    single.write_text("hello artifacts")
    client.log_artifact(run_id, str(single))

    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "top.bin").write_bytes(bytes(range(256)) * 40)
    (tree / "sub" / "mid.txt").write_text("middle")
    (tree / "sub" / "deeper" / "leaf.json").write_text('{"k": 1}')
    client.log_artifacts(run_id, str(tree), artifact_path="model")
    client.log_text(run_id, "some text", "texts/a.txt")
    client.log_dict(run_id, {"a": [1, 2]}, "config.json")

    root = {(f.path, f.is_dir) for f in client.list_artifacts(run_id)}
    assert root == {("notes.txt", False), ("model", True), ("texts", True), ("config.json", False)}
    repo = get_artifact_repository(client.get_run(run_id).info.artifact_uri)
    model = {f.path: f for f in repo.list_artifacts("model")}
    assert set(model) == {"model/top.bin", "model/sub"}
    assert model["model/top.bin"].file_size == 256 * 40
    assert model["model/sub"].is_dir
    assert [f.path for f in repo.list_artifacts("model/sub/deeper")] == ["model/sub/deeper/leaf.json"]

    out = Path(client.download_artifacts(run_id, "notes.txt", str(tmp_path / "one")))
    assert out.read_text() == "hello artifacts"
    (tmp_path / "all").mkdir()
    folder = Path(repo.download_artifacts("model", str(tmp_path / "all")))
    assert (folder / "top.bin").read_bytes() == (tree / "top.bin").read_bytes()
    assert (folder / "sub" / "mid.txt").read_text() == "middle"
    assert (folder / "sub" / "deeper" / "leaf.json").read_text() == '{"k": 1}'
    config = Path(client.download_artifacts(run_id, "config.json", str(tmp_path / "cfg")))
    assert json.loads(config.read_text()) == {"a": [1, 2]}
    text = Path(client.download_artifacts(run_id, "texts/a.txt", str(tmp_path / "txt")))
    assert text.read_text() == "some text"


def test_log_list_and_download_artifacts(client: MlflowClient, experiment_id: str, tmp_path: Path) -> None:
    """Default destination, on each metadata backend."""
    exercise_artifact_api(client, experiment_id, tmp_path)


def test_log_list_and_download_artifacts_per_destination(
    dest: Destination, dest_client: MlflowClient, unique: str, tmp_path: Path
) -> None:
    """The same through a local folder and through an S3-protocol server."""
    exercise_artifact_api(dest_client, dest_client.create_experiment(f"api-{unique}"), tmp_path)
    if dest.kind == "s3" and dest.server.kind == "cairn":
        assert dest.blob_keys(), "the S3 bucket holds the blobs"


# ---------------------------------------------------------------------------------------------
# Large files.

LARGE_FILE_BYTES = 120 * MIB
# Loose on purpose: this bounds memory (a buffered 120 MiB upload would exceed it), it does not
# measure it. The blob store buffers about 24 MiB per upload by design.
EXTRA_RSS_LIMIT_KIB = 100 * 1024


def completed_multipart_uploads(server: Server) -> int:
    """`mpu/complete` requests the server answered with 200, from its request log."""
    lines = server.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    return sum(1 for line in lines if "mpu/complete/" in line and "status=200" in line)


@pytest.mark.parametrize("upload", ["put", "multipart"])
def test_large_file_round_trips_in_bounded_server_memory(
    dest: Destination,
    dest_client: MlflowClient,
    dest_run: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    upload: str,
) -> None:
    """One streamed PUT, or the client's multipart path with its default 10 MiB chunks (the
    threshold lowered from 500 MB so that 120 MiB takes it)."""
    _, run_id = dest_run
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true" if upload == "multipart" else "false")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(100 * MIB))
    monkeypatch.delenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", raising=False)
    big = tmp_path / "big.bin"
    # Random bytes, written a MiB at a time, so nothing in the path can compress them away.
    with open(big, "wb") as f:
        for _ in range(LARGE_FILE_BYTES // MIB):
            f.write(os.urandom(MIB))
    want = sha256_file(big)

    measure = dest.server.kind == "cairn"
    if measure:
        pid = dest.server.pid
        reset_peak_rss(pid)
        idle_kib = proc_status_kib(pid, "VmRSS")
        completed_before = completed_multipart_uploads(dest.server)

    dest_client.log_artifact(run_id, str(big), artifact_path="large")
    repo = get_artifact_repository(dest_client.get_run(run_id).info.artifact_uri)
    [entry] = repo.list_artifacts("large")
    assert (entry.path, entry.file_size) == ("large/big.bin", LARGE_FILE_BYTES)
    big.unlink()  # keep at most one copy in tmp at a time
    out = Path(dest_client.download_artifacts(run_id, "large/big.bin", str(tmp_path / "down")))
    assert out.stat().st_size == LARGE_FILE_BYTES
    assert sha256_file(out) == want

    if measure:
        went_multipart = completed_multipart_uploads(dest.server) - completed_before
        assert went_multipart == (1 if upload == "multipart" else 0), dest.server.log_tail()
        peak_kib = proc_status_kib(pid, "VmHWM")
        assert peak_kib - idle_kib < EXTRA_RSS_LIMIT_KIB, (
            f"server peak RSS {peak_kib} KiB vs {idle_kib} KiB idle for a {LARGE_FILE_BYTES} byte round trip"
        )


def test_log_image_round_trips(dest: Destination, dest_run: tuple[str, str], tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    _, run_id = dest_run
    pixels = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)
    # The client API, not the fluent one: no active experiment left over from another test
    # can get in the way.
    client = MlflowClient(tracking_uri=dest.server.url)
    client.log_image(run_id, pixels, "images/ramp.png")
    repo = get_artifact_repository(client.get_run(run_id).info.artifact_uri)
    assert [f.path for f in repo.list_artifacts("images")] == ["images/ramp.png"]
    out = Path(repo.download_artifacts("images/ramp.png", str(tmp_path)))
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert np.array_equal(np.asarray(image), pixels)


# ---------------------------------------------------------------------------------------------
# Dedup and garbage collection (Cairn-only: MLflow stores a copy per run and has no `cairn gc`).


def gc(dest: Destination) -> str:
    result = dest.cli("gc", "--older-than", "0s", "--grace", "0s", *dest.cli_store_args(),
                      "--artifacts-destination", dest.uri)
    assert result.returncode == 0, result.stderr
    return result.stdout


def blob_key_of(digest: str) -> str:
    return f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"


@pytest.mark.cairn_only
def test_identical_files_share_one_blob_until_gc_removes_the_last_reference(
    dest: Destination, dest_client: MlflowClient, unique: str, tmp_path: Path
) -> None:
    experiment_id = dest_client.create_experiment(f"dedup-{unique}")
    first = dest_client.create_run(experiment_id).info.run_id
    second = dest_client.create_run(experiment_id).info.run_id
    payload = tmp_path / "weights.bin"
    payload.write_bytes(os.urandom(300_000))
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()

    before = dest.blob_keys()
    dest_client.log_artifact(first, str(payload))
    dest_client.log_artifact(second, str(payload), artifact_path="copy")
    added = dest.blob_keys() - before
    assert added == {blob_key_of(digest)}, "two runs, same bytes: exactly one new blob"

    listing = dest.cli("artifacts", "ls", second, "--json", *dest.cli_store_args())
    assert listing.returncode == 0, listing.stderr
    files = json.loads(listing.stdout)["files"]
    assert [(f["path"], f["size"], f["digest"]) for f in files] == [("copy/weights.bin", 300_000, digest)]

    # The first run goes; the second still names the blob, so it must survive collection.
    dest_client.delete_run(first)
    gc(dest)
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST|not found|does not exist"):
        dest_client.get_run(first)
    assert blob_key_of(digest) in dest.blob_keys()
    out = Path(dest_client.download_artifacts(second, "copy/weights.bin", str(tmp_path / "kept")))
    assert out.read_bytes() == payload.read_bytes()

    dest_client.delete_run(second)
    gc(dest)
    assert blob_key_of(digest) not in dest.blob_keys(), "the last reference went, so did the blob"

    verify = dest.cli("audit", "verify", *dest.cli_store_args())
    assert verify.returncode == 0, verify.stdout + verify.stderr
    blobs = dest.cli("artifacts", "verify", *dest.cli_store_args(), "--artifacts-destination", dest.uri)
    assert blobs.returncode == 0, blobs.stdout + blobs.stderr


# ---------------------------------------------------------------------------------------------
# Raw HTTP: what the client would never send.


def raw_request(server: Server, method: str, path: str, body: bytes = b"") -> tuple[int, dict]:
    """Sends `path` byte for byte: `requests` (urllib3) would normalise `..` segments away."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/octet-stream"})
        response = conn.getresponse()
        text = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, {"raw": text.decode("utf-8", "replace")}


TRAVERSALS = [
    pytest.param("{root}/../../../escape.txt", id="dotdot"),
    pytest.param("{root}/%2e%2e/%2E%2E/%2e%2e/escape.txt", id="encoded-dotdot"),
    pytest.param("{root}/sub/..%2f..%2f..%2fescape.txt", id="encoded-slash-dotdot"),
    pytest.param("%2Ftmp%2Fescape.txt", id="absolute"),
    # MLflow escapes control characters rather than refusing them; Cairn refuses.
    pytest.param("{root}/esc%00ape.txt", id="nul", marks=pytest.mark.cairn_only),
]


@pytest.mark.parametrize("template", TRAVERSALS)
def test_unsafe_upload_paths_are_refused_and_write_nothing(
    dest: Destination, dest_client: MlflowClient, dest_run: tuple[str, str], template: str
) -> None:
    experiment_id, run_id = dest_run
    root = f"{experiment_id}/{run_id}/artifacts"
    before = dest.blob_keys()
    status, body = raw_request(dest.server, "PUT", f"{ARTIFACTS_API}/{template.format(root=root)}", b"payload")
    assert status == 400, body
    assert body.get("error_code") == "INVALID_PARAMETER_VALUE", body
    assert dest.blob_keys() == before
    assert dest_client.list_artifacts(run_id) == []
    if dest.kind == "local":
        assert not list(dest.server.workdir.rglob("*escape*")), "a file landed outside the run"
    assert not Path("/tmp/escape.txt").exists()


@pytest.mark.cairn_only
def test_cut_off_upload_leaves_no_file_and_no_blob(
    dest: Destination, dest_client: MlflowClient, dest_run: tuple[str, str], tmp_path: Path
) -> None:
    experiment_id, run_id = dest_run
    before = dest.blob_keys()
    path = f"{ARTIFACTS_API}/{experiment_id}/{run_id}/artifacts/partial.bin"
    with socket.create_connection(("127.0.0.1", dest.server.port), timeout=30) as sock:
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{dest.server.port}\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n"
        )
        sock.sendall(head.encode())
        sock.sendall(os.urandom(MIB))
    # The server learns of the cut only when its read fails, and then aborts the staged upload
    # in the background; wait (bounded) for the staging area to empty.
    deadline = time.monotonic() + 20
    while dest.staging_keys() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not dest.staging_keys(), "the aborted upload's staging object was not removed"
    assert dest_client.list_artifacts(run_id) == []
    assert dest.blob_keys() == before, "a cut-off upload must not leave a blob"
    status, _ = raw_request(dest.server, "GET", f"{path}")
    assert status == 404

    # Still healthy, and the same path takes a complete upload afterwards.
    assert requests.get(dest.server.url + "/health", timeout=10).status_code == 200
    whole = tmp_path / "partial.bin"
    whole.write_bytes(b"complete this time")
    dest_client.log_artifact(run_id, str(whole))
    assert [(f.path, f.file_size) for f in dest_client.list_artifacts(run_id)] == [("partial.bin", 18)]


# ---------------------------------------------------------------------------------------------
# The server's own periodic collection (Cairn-only).


@pytest.mark.cairn_only
def test_periodic_gc_in_the_server_reclaims_deleted_runs(
    make_server, monkeypatch: pytest.MonkeyPatch, unique: str, tmp_path: Path
) -> None:
    # A zero grace is unsafe beside concurrent uploads, and fine in this quiet test.
    server = make_server(
        "sqlite", env={"CAIRN_GC_INTERVAL": "1s", "CAIRN_GC_OLDER_THAN": "0s", "CAIRN_GC_GRACE": "0s"}
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    client = MlflowClient(tracking_uri=server.url)
    local = Destination(kind="local", server=server, root=server.workdir / "data" / "artifacts")
    experiment_id = client.create_experiment(f"pgc-{unique}")
    doomed, kept = (client.create_run(experiment_id).info.run_id for _ in range(2))
    (tmp_path / "a.bin").write_bytes(os.urandom(10_000))
    (tmp_path / "b.bin").write_bytes(os.urandom(10_000))
    client.log_artifact(doomed, str(tmp_path / "a.bin"))
    client.log_artifact(kept, str(tmp_path / "b.bin"))
    doomed_key = blob_key_of(hashlib.sha256((tmp_path / "a.bin").read_bytes()).hexdigest())
    kept_key = blob_key_of(hashlib.sha256((tmp_path / "b.bin").read_bytes()).hexdigest())
    assert {doomed_key, kept_key} <= local.blob_keys()

    client.delete_run(doomed)
    deadline = time.monotonic() + 30
    while doomed_key in local.blob_keys():
        assert time.monotonic() < deadline, "the server never collected the deleted run's blob:\n" + server.log_tail()
        time.sleep(0.2)
    with pytest.raises(MlflowException):
        client.get_run(doomed)
    assert kept_key in local.blob_keys()
    assert [f.path for f in client.list_artifacts(kept)] == ["b.bin"]
    server.stop()
    verify = cairn_cli("audit", "verify", "--backend-store-uri", server.backend_uri)
    assert verify.returncode == 0, verify.stdout + verify.stderr
