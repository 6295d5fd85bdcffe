"""`cairn.Client`, `cairn.log_dataset` and the transport, against the real server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

import cairn
from cairn._config import resolve
from cairn._transport import Transport, retry_after
from cairn.digest import dataset_digest, file_digest, folder_manifest, manifest_digest
from conftest import Server


def test_file_digests_match_the_servers_blob_digests(tracking: str, tmp_path: Path) -> None:
    data = tmp_path / "sales"
    (data / "month=2026-10").mkdir(parents=True)
    (data / "month=2026-10" / "part-0.csv").write_text("id,amount\n1,9.5\n")
    (data / "month=2026-11").mkdir()
    (data / "month=2026-11" / "part-0.csv").write_text("id,amount\n2,3.25\n")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(data), "sales")
    listing = cairn.Client(tracking)._get(f"/api/cairn/v1/runs/{run.info.run_id}/artifacts")
    server_rows = sorted(
        (f["path"].removeprefix("sales/"), f["digest"], f["size"])
        for f in listing["files"]
        if f["path"].startswith("sales/")
    )
    assert folder_manifest(data) == server_rows
    assert dataset_digest(data) == manifest_digest(server_rows)
    assert dataset_digest(data / "month=2026-10" / "part-0.csv") == file_digest(data / "month=2026-10" / "part-0.csv")[0]
    with pytest.raises(FileNotFoundError):
        dataset_digest(tmp_path / "missing")


def test_log_dataset_records_the_version_the_slice_and_the_used_edge(tracking: str, tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1 not really parquet PAR1")
    with mlflow.start_run() as run:
        logged = cairn.log_dataset(path, name="churn-train", spec={"row_range": [0, 1000]})
    digest = dataset_digest(path)
    assert logged["dataset"]["id"] == f"dataset:churn-train@{digest}"
    assert logged["dataset"]["digest"] == digest
    client = cairn.Client(tracking)
    upstream = client.upstream(f"run:{run.info.run_id}")
    ids = {n["id"] for n in upstream["nodes"]}
    assert logged["slice"]["id"] in ids and logged["dataset"]["id"] in ids
    # Registering the same version again is a no-op; the same key with other bytes is refused.
    assert client.register_dataset("churn-train", path)["id"] == logged["dataset"]["id"]
    with pytest.raises(cairn.APIError) as refused:
        client.register_node(logged["dataset"]["id"], digest="0" * 64)
    assert refused.value.status in (400, 409)
    with pytest.raises(RuntimeError, match="active run"):
        cairn.log_dataset(path, name="x")


def test_errors_are_typed_by_status(server: Server) -> None:
    client = cairn.Client(server.url, max_retries=0)
    with pytest.raises(cairn.NotFound) as missing:
        client.get_node("dataset:never@1")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(cairn.BadRequest):
        client.upstream("not-a-node")
    with pytest.raises(ValueError):
        client.add_edge("run:a", "inspired", "run:b")
    with pytest.raises(cairn.ConnectionFailed):
        cairn.Client("http://127.0.0.1:9", max_retries=0).get_node("dataset:a@1")


class Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 503 with `Retry-After: 0` (or 429 without it) until `failures` ran out."""

    failures = 0
    statuses: list[int] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        cls = type(self)
        if cls.failures > 0:
            cls.failures -= 1
            status = 503 if cls.failures % 2 else 429
            self.send_response(status)
            if status == 503:
                self.send_header("Retry-After", "0")
            body = b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}'
        else:
            status = 200
            self.send_response(200)
            body = b'{"ok": true}'
        cls.statuses.append(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def flaky() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_retries_back_off_and_honour_retry_after(flaky: str) -> None:
    Flaky.failures, Flaky.statuses = 3, []
    slept: list[float] = []
    transport = Transport(resolve(flaky, max_retries=5), sleep=slept.append)
    assert transport.request("GET", "/x") == {"ok": True}
    assert Flaky.statuses == [429, 503, 429, 200]
    assert slept[1] == 0.0  # the 503 said Retry-After: 0
    assert 0 < slept[0] <= 0.25 and 0 < slept[2] <= 1.0  # back-off, growing, when it did not say

    Flaky.failures, Flaky.statuses = 10, []
    with pytest.raises(cairn.ServerError):
        Transport(resolve(flaky, max_retries=2), sleep=slept.append).request("GET", "/x")
    assert len(Flaky.statuses) == 3


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("7") == 7.0
    assert retry_after("Wed, 02 Dec 2026 10:00:10 GMT", now=1796205600.0) == 10.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_settings_come_from_mlflow_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAIRN_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000/")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0k")
    settings = resolve()
    assert settings.url == "http://tracking.example:5000" and settings.token == "t0k"
    assert Transport(settings).session.headers["Authorization"] == "Bearer t0k"
    with pytest.raises(ValueError, match="http"):
        resolve("file:///tmp/mlruns")
