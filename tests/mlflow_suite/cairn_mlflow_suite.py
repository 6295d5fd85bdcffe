"""A pytest plugin that runs MLflow's own tracking-server tests against `cairn server`.

MLflow's tests start their server in one of three ways: `ServerThread(app, port)` (an in-process
uvicorn server, used by `test_rest_tracking.py` and `test_model_registry.py`), `_init_server(...)`
(a server subprocess) and, in `test_mlflow_artifacts.py`, a module-level `_launch_server(...)`
that runs `mlflow server` with an artifacts destination. This plugin replaces all three with a
`cairn server` process on a fresh SQLite store in its own temporary folder, so every test sees an
empty server exactly as it would see a fresh MLflow one.

The in-process tests configure MLflow's server by calling `initialize_backend_stores(backend_uri,
default_artifact_root=...)` in the test process before starting it. That call is replaced too: it
only records the artifact root, which the next `cairn server` gets as `--default-artifact-root`,
as MLflow's server gets it. Left in place, MLflow's call also points the test process's own
tracking URI at MLflow's database, so a test's CLI calls would write there instead of to the
server under test. Nothing else in MLflow's tests changes: tests that read MLflow's database or
artifact folder directly fail against Cairn, and the harness script says which those are.

Loaded with `-p cairn_mlflow_suite` from `scripts/mlflow-server-tests.sh`; `CAIRN_BIN` names the
binary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

STARTUP_TIMEOUT_SECS = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CairnServer:
    """One `cairn server` process on `port` over a fresh store; stopped and removed on exit."""

    def __init__(self, port: int | None = None, default_artifact_root: str | None = None) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.default_artifact_root = default_artifact_root
        self.workdir = Path(tempfile.mkdtemp(prefix="cairn-mlflow-suite-"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        binary = os.environ["CAIRN_BIN"]
        cmd = [binary, "server", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.workdir / "data")]
        if self.default_artifact_root:
            cmd += ["--default-artifact-root", self.default_artifact_root]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.setdefault("RUST_LOG", "warn")
        log = open(self.workdir / "server.log", "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            # The test's own working directory, as MLflow's in-process server shares it: relative
            # artifact locations resolve against it.
            cmd, cwd=os.getcwd(), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("cairn server exited: " + (self.workdir / "server.log").read_text())
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return self.url
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("cairn server did not become healthy")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # `ServerThread` is used as a context manager yielding the URL.
    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# The artifact root the test last configured with `initialize_backend_stores`, for the next server.
_configured_artifact_root: str | None = None


def initialize_backend_stores(
    backend_store_uri=None, registry_store_uri=None, default_artifact_root=None, **_
):
    """Stands in for MLflow's `initialize_backend_stores`: records the artifact root only. The store
    URIs name MLflow's own database, which Cairn never opens; every server gets a fresh store."""
    global _configured_artifact_root
    _configured_artifact_root = default_artifact_root


def server_thread(app, port: int) -> CairnServer:
    """Stands in for MLflow's `ServerThread(app, port)`; the app is MLflow's and is ignored."""
    return CairnServer(port, _configured_artifact_root)


@contextlib.contextmanager
def init_server(backend_uri, root_artifact_uri, extra_env=None, app=None, server_type="fastapi"):
    """Stands in for MLflow's `_init_server`: yields the URL of a fresh Cairn server with the
    artifact root MLflow's server would get."""
    with CairnServer(default_artifact_root=root_artifact_uri) as url:
        yield url


@contextlib.contextmanager
def launch_server(host, port, backend_store_uri, default_artifact_root, artifacts_destination):
    """Stands in for `test_mlflow_artifacts._launch_server`. MLflow's fixture has already
    created an MLflow database at `backend_store_uri`, which Cairn refuses to open, so the
    server gets its own store; the artifact root the fixture chose is kept."""
    server = CairnServer(port, default_artifact_root)
    server.start()
    try:
        yield server.proc
    finally:
        server.stop()


def _patch(module) -> None:
    if hasattr(module, "ServerThread"):
        module.ServerThread = server_thread
    if hasattr(module, "_init_server"):
        module._init_server = init_server
    if hasattr(module, "_launch_server"):
        module._launch_server = launch_server
    if hasattr(module, "initialize_backend_stores"):
        module.initialize_backend_stores = initialize_backend_stores


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("CAIRN_BIN"):
        raise pytest.UsageError("CAIRN_BIN must name the cairn binary")
    # Before the test modules import the names, so that `from … import ServerThread` binds ours.
    from tests.tracking import integration_test_utils

    _patch(integration_test_utils)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Names defined in the test modules themselves can only be replaced once they are imported.
    for module in {item.module for item in items if getattr(item, "module", None) is not None}:
        _patch(module)
