"""A real `cairn server` for the package's tests (SQLite; PostgreSQL too for the idempotency and
offline-spool tests, when `CAIRN_TEST_POSTGRES_URL` names a cluster), and helpers to run
unchanged MLflow scripts against it in child processes, as a data scientist would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ENV = "CAIRN_TEST_POSTGRES_URL"
# Set by scripts/test.sh, which starts a cluster: a missing URL then fails the PostgreSQL cases
# instead of quietly skipping them.
REQUIRE_POSTGRES_ENV = "CAIRN_PY_REQUIRE_POSTGRES"
BACKENDS = ["sqlite", "postgresql"]


def postgres_database() -> str:
    """A fresh database in the test cluster, so no test sees another server's data; skips (or
    fails, under scripts/test.sh) when no cluster is given."""
    admin = os.environ.get(POSTGRES_ENV)
    if not admin:
        if os.environ.get(REQUIRE_POSTGRES_ENV):
            pytest.fail(f"{POSTGRES_ENV} is not set but {REQUIRE_POSTGRES_ENV} is")
        pytest.skip(f"{POSTGRES_ENV} is not set; scripts/test.sh starts a throw-away cluster")
    name = "py_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-q", "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True, timeout=60)
    return f"{admin.rpartition('/')[0]}/{name}"


def cairn_binary() -> Path:
    path = Path(os.environ.get("CAIRN_BIN") or REPO_ROOT / "target" / "debug" / "cairn")
    if not path.is_file():
        raise RuntimeError(f"no cairn binary at {path}: run `cargo build -p cairn` or set CAIRN_BIN")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `cairn server` process on a free port over a data folder (and, for `postgresql`, a
    database of its own) that survive restarts."""

    def __init__(self, workdir: Path, binary: Path | None = None, backend: str = "sqlite") -> None:
        self.workdir = workdir
        self.binary = binary or cairn_binary()
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.backend = backend
        if backend == "sqlite":
            self.backend_uri = f"sqlite:///{workdir / 'data' / 'cairn.db'}"
        elif backend == "postgresql":
            self.backend_uri = postgres_database()
        else:
            raise ValueError(f"unknown backend {backend!r}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", self.backend_uri, "--data-dir", str(data)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cairn server exited: {(self.workdir / 'server.log').read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("cairn server did not start in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def audit_verify(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), "audit", "verify", "--backend-store-uri", self.backend_uri],
            capture_output=True, text=True, timeout=120,
        )


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("cairn")).start()
    yield s
    s.stop()


@pytest.fixture()
def tracking(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MLflow in this process pointed at the server, with a fresh experiment."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    name = f"exp-{time.time_ns()}"
    mlflow.set_experiment(name)
    yield server.url
    while mlflow.active_run() is not None:
        mlflow.end_run()


def run_script(cwd: Path, script: str, url: str, env: dict[str, str] | None = None) -> str:
    """Runs an unchanged MLflow script with this venv's interpreter and returns the run id it
    prints on its last line."""
    (cwd / "train.py").write_text(script)
    full_env = {**os.environ, "MLFLOW_TRACKING_URI": url, **(env or {})}
    done = subprocess.run(
        [sys.executable, "train.py", "--lr", "0.1", "--api-token", "hunter2"],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


TRAIN_SCRIPT = """\
import mlflow
mlflow.set_experiment("capture")
with mlflow.start_run() as run:
    mlflow.log_metric("loss", 0.5)
print(run.info.run_id)
"""


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout
