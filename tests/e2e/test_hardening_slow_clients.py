"""Slow and idle clients must not hold the server.

Before this change, connections that sent nothing, part of a header, or 1 byte of a 100-byte
body stayed open for ever, and under `ulimit -n 128` 150 idle sockets made `/health` time out
while the log repeated "accept error: Too many open files" every second. Now a connection must
send its request head within `--idle-timeout`, a body must keep moving within
`--body-timeout`, and at the connection cap (never above the descriptor limit) the connection
idle longest is closed to make room.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time

import pytest
import requests

pytestmark = pytest.mark.cairn_only

TIMEOUT_ARGS = ["--idle-timeout", "2s", "--body-timeout", "2s"]


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def seconds_until_closed(sock: socket.socket, limit: float = 20.0) -> tuple[float, bytes]:
    """How long until the server closes `sock`, and what it sent before closing."""
    started = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (TimeoutError, socket.timeout):
        pytest.fail(f"the server kept the connection open for {limit} s; it sent {received[:200]!r}")
    except ConnectionResetError:
        pass
    return time.monotonic() - started, received


@pytest.fixture(scope="module")
def timed_server(make_server):
    return make_server("sqlite", args=TIMEOUT_ARGS)


def test_a_connection_that_sends_nothing_is_closed(timed_server):
    took, received = seconds_until_closed(connect(timed_server))
    assert 1.5 <= took < 6, took
    assert received == b""


def test_a_partial_request_head_is_closed(timed_server):
    sock = connect(timed_server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    took, _ = seconds_until_closed(sock)
    assert 1.5 <= took < 6, took


def test_an_idle_kept_alive_connection_is_closed(timed_server):
    sock = connect(timed_server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200"), first
    took, _ = seconds_until_closed(sock)
    assert 1.5 <= took < 6, took


def test_a_stalled_body_is_cut_off_with_a_json_error(timed_server):
    sock = connect(timed_server)
    sock.sendall(
        b"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    took, received = seconds_until_closed(sock)
    assert took < 8, took
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), received
    assert b'"error_code":"INVALID_PARAMETER_VALUE"' in body and b"stalled" in body, body


def test_a_slow_but_moving_upload_completes(timed_server, monkeypatch):
    """An upload that takes several body timeouts in all, but never pauses that long, succeeds."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", timed_server.url)
    client = mlflow.MlflowClient(timed_server.url)
    run = client.create_run(client.create_experiment(f"slow-{os.getpid()}-{time.time_ns()}"))
    chunks = [os.urandom(16 * 1024) for _ in range(12)]

    def trickle():
        for chunk in chunks:
            yield chunk
            time.sleep(0.5)

    url = f"{timed_server.url}/api/2.0/mlflow-artifacts/artifacts/{run.info.experiment_id}/{run.info.run_id}/artifacts/slow.bin"
    started = time.monotonic()
    r = requests.put(url, data=trickle(), timeout=60)
    assert r.status_code == 200, r.text
    assert time.monotonic() - started > 5, "the upload should have taken more than two body timeouts"
    got = requests.get(url, timeout=60)
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_descriptor_exhaustion_keeps_health_answering(make_server):
    """150 idle sockets against a server limited to 128 descriptors (and the default 30 s idle
    timeout): the idle ones are closed to make room, `/health` answers at once, and the log does
    not fill with accept errors."""
    server = make_server("sqlite", nofile=128)
    idle = []
    try:
        for _ in range(150):
            idle.append(connect(server))
        time.sleep(1.0)
        started = time.monotonic()
        r = requests.get(server.url + "/health", timeout=10)
        assert r.status_code == 200
        assert time.monotonic() - started < 5
        # And the server keeps working for real requests.
        r = requests.post(server.url + "/api/2.0/mlflow/experiments/search", json={"max_results": 1}, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        for sock in idle:
            sock.close()
    log = server.log_path.read_text(errors="replace")
    assert log.count("Too many open files") <= 3, log[-2000:]


def test_the_connection_cap_closes_idle_connections_first(make_server):
    server = make_server("sqlite", args=["--max-connections", "8"])
    idle = [connect(server) for _ in range(20)]
    try:
        time.sleep(0.5)
        with requests.Session() as session:
            for _ in range(5):
                assert session.get(server.url + "/health", timeout=10).status_code == 200
        # The oldest idle sockets were closed by the server; the newest may still be open.
        closed = 0
        for sock in idle[:10]:
            sock.settimeout(5)
            try:
                closed += sock.recv(1) == b""
            except ConnectionResetError:
                closed += 1
            except (TimeoutError, socket.timeout):
                pass
        assert closed >= 5, closed
    finally:
        for sock in idle:
            sock.close()
