"""Every error is MLflow's JSON shape with a precise message, including the ones the HTTP layer
answers by itself and a full disk.

Before this change, 414 and 431 came back with empty bodies, an invalid-UTF-8 path got plain
text, and a full disk became a generic 500 "Internal error".
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from servers import cairn_cli

pytestmark = pytest.mark.cairn_only


def raw_exchange(server, request: bytes) -> tuple[str, dict]:
    """Send `request` on a fresh socket; return the status line and the JSON body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert any(line.lower() == "content-type: application/json" for line in lines), head
    return lines[0], json.loads(body)


def test_uri_too_long_is_json(tracking):
    status, body = raw_exchange(tracking, b"GET /health?" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == "HTTP/1.1 414 URI Too Long"
    assert body["error_code"] == "INVALID_PARAMETER_VALUE" and "URI is longer" in body["message"]


def test_headers_too_large_are_json(tracking):
    big = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 500_000 + b"\r\n\r\n"
    status, body = raw_exchange(tracking, big)
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert "headers are larger" in body["message"]
    many = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n"
    status, body = raw_exchange(tracking, many)
    assert status.startswith("HTTP/1.1 431") and body["error_code"] == "INVALID_PARAMETER_VALUE"


def test_garbage_instead_of_http_is_json(tracking):
    status, body = raw_exchange(tracking, b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n")
    assert status.startswith("HTTP/1.1 400")
    assert body["error_code"] == "BAD_REQUEST"


def test_invalid_utf8_in_a_path_is_json(tracking):
    r = requests.get(tracking.url + "/api/2.0/mlflow-artifacts/artifacts/%FF%FE/x.txt", timeout=30)
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "UTF-8" in r.json()["message"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 4 MiB tmpfs, which fills up for real; needs root (CI and these machines run as root)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_artifact_disk_says_so_and_keeps_what_was_stored(make_server, tiny_disk):
    import mlflow

    server = make_server("sqlite", artifacts_destination=str(tiny_disk / "artifacts"))
    client = mlflow.MlflowClient(server.url)
    run = client.create_run(client.create_experiment(f"disk-{uuid.uuid4().hex[:8]}")).info
    api = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{run.experiment_id}/{run.run_id}/artifacts/"
    kept = os.urandom(512 * 1024)
    assert requests.put(api + "kept.bin", data=kept, timeout=60).status_code == 200
    r = requests.put(api + "huge.bin", data=os.urandom(8 * 1024 * 1024), timeout=60)
    assert r.status_code == 507, (r.status_code, r.text)
    assert r.json()["error_code"] == "RESOURCE_EXHAUSTED"
    assert "out of disk space" in r.json()["message"]
    assert requests.get(api + "kept.bin", timeout=60).content == kept


def test_a_full_database_disk_says_so_and_keeps_every_acknowledged_write(make_server, tiny_disk):
    import mlflow

    server = make_server("sqlite", sqlite_dir=tiny_disk)
    client = mlflow.MlflowClient(server.url)
    run = client.create_run(client.create_experiment(f"full-{uuid.uuid4().hex[:8]}")).info.run_id
    api = server.url + "/api/2.0/mlflow/"
    acknowledged = 0
    full = None
    for batch in range(2000):
        params = [{"key": f"p{batch}-{i}", "value": "v" * 200} for i in range(100)]
        r = requests.post(api + "runs/log-batch", json={"run_id": run, "params": params}, timeout=60)
        if r.status_code == 200:
            acknowledged += 1
            continue
        full = r
        break
    assert full is not None, "the 4 MiB disk never filled"
    assert full.status_code == 507, (full.status_code, full.text)
    assert full.json()["error_code"] == "RESOURCE_EXHAUSTED"
    assert "out of disk space" in full.json()["message"]
    stored = client.get_run(run).data.params
    assert len(stored) == 100 * acknowledged, (len(stored), acknowledged)
    server.stop()
    # Verify a copy on a disk with room: the log and the tables agree, nothing half-written.
    roomy = server.workdir / "verify"
    roomy.mkdir()
    for part in Path(server.sqlite_path).parent.glob(Path(server.sqlite_path).name + "*"):
        shutil.copy(part, roomy / part.name)
    copy = roomy / Path(server.sqlite_path).name
    verified = cairn_cli("audit", "verify", "--backend-store-uri", f"sqlite:///{copy}")
    assert verified.returncode == 0, verified.stdout + verified.stderr
