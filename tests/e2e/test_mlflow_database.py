"""Cairn refuses a database that MLflow created, in one clear line, and leaves it untouched.

A team moving from MLflow will point Cairn at its old `mlflow.db` sooner or later. Migrating it
would fail half-way on MLflow's own tables (or, worse, succeed beside them); instead Cairn says
what the file is and that it will not modify it. The database is made by the real `mlflow db
upgrade` from the test venv, so the test follows MLflow's schema as it really is.
"""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from servers import cairn_binary, create_postgres_database, free_port, mlflow_binary, run_psql

pytestmark = pytest.mark.cairn_only


def run_cairn_server(uri: str, tmp_path) -> subprocess.CompletedProcess:
    cmd = [str(cairn_binary()), "server", "--port", str(free_port()), "--backend-store-uri", uri]
    cmd += ["--data-dir", str(tmp_path / "data")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_refused(result: subprocess.CompletedProcess) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "MLflow tracking database" in lines[0] and "will not modify it" in lines[0], lines[0]
    assert "importer" in lines[0], lines[0]
    assert "migration" not in lines[0], lines[0]


def test_an_mlflow_sqlite_database_is_refused_untouched(tmp_path):
    db = tmp_path / "mlflow.db"
    subprocess.run([str(mlflow_binary()), "db", "upgrade", f"sqlite:///{db}"], check=True, capture_output=True)
    before = digest(db)
    siblings = sorted(p.name for p in tmp_path.iterdir())

    result = run_cairn_server(f"sqlite:///{db}", tmp_path)

    assert_refused(result)
    assert digest(db) == before
    # No WAL or shared-memory file appeared beside it: the file was only read.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data") == siblings


def test_an_mlflow_postgres_database_is_refused_untouched(tmp_path, postgres_admin_url):
    url = create_postgres_database(postgres_admin_url)
    # The venv has no PostgreSQL driver for `mlflow db upgrade`, so this lays down the part of
    # MLflow's schema that identifies it: Alembic's bookkeeping table and `experiments`.
    run_psql(url, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    run_psql(url, "INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6')")
    run_psql(url, "CREATE TABLE experiments (experiment_id SERIAL PRIMARY KEY, name VARCHAR(256))")
    tables = "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'"
    before = run_psql(url, tables)

    result = run_cairn_server(url, tmp_path)

    assert_refused(result)
    assert "a1b2c3d4e5f6" in result.stderr
    assert run_psql(url, tables) == before == "alembic_version,experiments"
