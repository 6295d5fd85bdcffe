"""Fixtures for the end-to-end suite: a real server process per storage backend, and the real
`mlflow` client pointed at it.

By default the server is `cairn server` (binary from `CAIRN_BIN` or `target/{release,debug}`),
once on SQLite and once on PostgreSQL (`CAIRN_TEST_POSTGRES_URL`, a superuser URL of a
throw-away cluster; `scripts/test.sh` starts one). With `--reference-mlflow` the server is a
real `mlflow server` on SQLite instead, which proves that each test encodes MLflow's behaviour;
tests marked `cairn_only` are skipped there.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

# The client retries 5xx answers with exponential backoff for minutes by default; a failing
# server should fail a test quickly instead. Set before mlflow reads them.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")

import mlflow  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from servers import MotoServer, Server, create_postgres_database  # noqa: E402

POSTGRES_ENV = "CAIRN_TEST_POSTGRES_URL"
# Set by `scripts/test.sh`, where a missing cluster is a broken set-up rather than a reason
# to skip half the suite quietly.
REQUIRE_POSTGRES_ENV = "CAIRN_E2E_REQUIRE_POSTGRES"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reference-mlflow",
        action="store_true",
        help="run the suite against a real `mlflow server` (SQLite) instead of cairn",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--reference-mlflow"):
        return
    # Reference mode runs MLflow on SQLite only: the venv has no PostgreSQL driver for it, and
    # the SQLite run already pins down the behaviour the tests expect.
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("server") if callspec else None
        (dropped if backend == "postgresql" else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    skip = pytest.mark.skip(reason="Cairn-only feature; not part of MLflow's behaviour")
    for item in items:
        if "cairn_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def reference(pytestconfig: pytest.Config) -> bool:
    """True when the suite runs against real MLflow."""
    return bool(pytestconfig.getoption("--reference-mlflow"))


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get(REQUIRE_POSTGRES_ENV):
            pytest.fail(f"{POSTGRES_ENV} is not set but {REQUIRE_POSTGRES_ENV} is")
        pytest.skip(f"{POSTGRES_ENV} is not set; scripts/test.sh starts a throw-away cluster")
    return url


@pytest.fixture(scope="session")
def make_server(tmp_path_factory: pytest.TempPathFactory, reference: bool, request: pytest.FixtureRequest):
    """A factory for servers that are stopped at the end of the session.

    `make_server(backend, kind=None)` returns a started `Server` with fresh, empty storage;
    `artifacts_destination`, `env`, `args` (Cairn's flags) and `mlflow_args` (MLflow's, in
    reference mode) are passed to the `Server` (see there).
    """
    started: list[Server] = []

    def make(
        backend: str,
        kind: str | None = None,
        *,
        artifacts_destination: str | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        mlflow_args: list[str] | None = None,
        nofile: int | None = None,
        sqlite_dir: Path | None = None,
    ) -> Server:
        kind = kind or ("mlflow" if reference else "cairn")
        workdir = tmp_path_factory.mktemp(f"{kind}-{backend}")
        sqlite_path = None
        if backend == "sqlite":
            sqlite_path = (sqlite_dir or workdir) / "store.db"
            # `sqlite:///` followed by an absolute path gives four slashes, as MLflow expects.
            uri = f"sqlite:///{sqlite_path}"
        elif backend == "postgresql":
            uri = create_postgres_database(request.getfixturevalue("postgres_admin_url"))
        else:
            raise ValueError(backend)
        server = Server(
            kind=kind,
            backend=backend,
            backend_uri=uri,
            workdir=workdir,
            sqlite_path=sqlite_path,
            artifacts_destination=artifacts_destination,
            env=dict(env or {}),
            args=list(args or []),
            mlflow_args=list(mlflow_args or []),
            nofile=nofile,
        )
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory):
    """moto's S3-protocol server, started once per session from the test venv."""
    server = MotoServer(workdir=tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, make_server) -> Server:
    """The shared server of one backend; tests isolate themselves by unique experiment names."""
    return make_server(request.param)


@pytest.fixture
def tracking(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """Point the fluent API at `server` and leave no active run behind."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    # `set_experiment` in one test must not leak into the next, which may talk to another server.
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(server.url)
    yield server
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def client(tracking: Server) -> MlflowClient:
    """An explicit client for the server under test."""
    return MlflowClient(tracking_uri=tracking.url)


@pytest.fixture
def unique() -> str:
    """A short random suffix that keeps names unique on a shared server."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def experiment_id(client: MlflowClient, unique: str) -> str:
    """A fresh, empty experiment."""
    return client.create_experiment(f"e2e-{unique}")


@pytest.fixture
def api(tracking: Server):
    """Raw HTTP access to the REST API, for inputs the client would never send."""
    return RawApi(tracking.url)


class RawApi:
    """Thin `requests` wrapper for `/api/2.0/mlflow/...`."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/") + "/api/2.0/mlflow/"

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.base + path, timeout=60, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.base + path, timeout=60, **kwargs)


def pytest_report_header(config: pytest.Config) -> str:
    mode = "reference mlflow server" if config.getoption("--reference-mlflow") else "cairn server"
    pg = "set" if os.environ.get(POSTGRES_ENV) else "unset"
    return f"e2e target: {mode}; {POSTGRES_ENV} {pg}; mlflow client {mlflow.__version__}"

