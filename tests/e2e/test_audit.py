"""Cairn only: `cairn audit verify` passes on an honest store and names an event when a row was
altered, removed or inserted behind the server's back (with the `sqlite3` shell or `psql`)."""

import re
import shutil
import subprocess

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from servers import Server, cairn_cli, run_psql

pytestmark = pytest.mark.cairn_only

EVENT = re.compile(r"\bevent \d+", re.IGNORECASE)


def record_a_session(server: Server) -> None:
    """An ordinary tracking session: an experiment with tags, a run with params, tags, metrics."""
    client = MlflowClient(tracking_uri=server.url)
    exp_id = client.create_experiment("audited", tags={"team": "vision"})
    run_id = client.create_run(exp_id, run_name="audited-run").info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_param(run_id, "epochs", "3")
    client.set_tag(run_id, "stage", "dev")
    client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (s + 1), 1000 + s, s) for s in range(5)])
    client.set_terminated(run_id)


def verify(uri: str) -> subprocess.CompletedProcess:
    return cairn_cli("audit", "verify", "--backend-store-uri", uri)


def sqlite3_shell(db, sql: str) -> None:
    if shutil.which("sqlite3") is None:
        pytest.fail("the sqlite3 shell is needed (scripts/test.sh installs it)")
    subprocess.run(["sqlite3", str(db), sql], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def honest_sqlite_db(make_server):
    """A SQLite store after a normal session, the server stopped; tests tamper with copies."""
    server = make_server("sqlite", kind="cairn")
    record_a_session(server)
    assert server.stop() is not None
    return server.sqlite_path


def copy_db(src, dst_dir):
    """Copy a stopped store, with any write-ahead-log side files, so each test tampers alone."""
    dst = dst_dir / src.name
    for suffix in ("", "-wal", "-shm"):
        side = src.with_name(src.name + suffix)
        if side.exists():
            shutil.copy2(side, dst.with_name(dst.name + suffix))
    return dst


def test_verify_passes_on_an_honest_sqlite_store(honest_sqlite_db, tmp_path):
    db = copy_db(honest_sqlite_db, tmp_path)
    result = verify(f"sqlite:///{db}")
    assert result.returncode == 0, result.stdout + result.stderr


# Each edit, and what the report must point at: the event whose record no longer matches, or,
# for a row that no event ever wrote, the row itself.
TAMPERING = [
    ("UPDATE params SET value = 'x' WHERE key = 'lr'", EVENT),
    ("UPDATE run_tags SET value = 'prod' WHERE key = 'stage'", EVENT),
    ("UPDATE metrics SET value = 42.0 WHERE step = 2", EVENT),
    ("UPDATE runs SET status = 'FAILED'", EVENT),
    ("UPDATE experiment_tags SET value = 'nlp' WHERE key = 'team'", EVENT),
    ("DELETE FROM params WHERE key = 'epochs'", EVENT),
    ("DELETE FROM metrics WHERE step = 3", EVENT),
    (
        "INSERT INTO params (run_pk, key, value, seq) SELECT run_pk, 'injected', 'x', seq FROM params LIMIT 1",
        re.compile(r"injected|\bevent \d+", re.IGNORECASE),
    ),
    ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2", EVENT),
    # Payloads are stored compressed: change one byte of one (the concatenation gives text,
    # hence the cast), and put a text payload where bytes belong.
    (
        "UPDATE audit_events SET payload = CAST(substr(payload, 1, 5) || "
        "CASE WHEN substr(payload, 6, 1) = X'00' THEN X'01' ELSE X'00' END || substr(payload, 7) AS BLOB) "
        "WHERE seq = 3",
        EVENT,
    ),
    ("UPDATE audit_events SET payload = '{}' WHERE seq = 3", EVENT),
    ("UPDATE audit_events SET hash = randomblob(32) WHERE seq = 2", EVENT),
    ("UPDATE audit_events SET time = time + 1 WHERE seq = 2", EVENT),
    ("DELETE FROM audit_events WHERE seq = 3", EVENT),
    ("DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)", EVENT),
]


@pytest.mark.parametrize(("tamper", "named"), TAMPERING, ids=[sql for sql, _ in TAMPERING])
def test_verify_reports_tampering_with_sqlite3(honest_sqlite_db, tmp_path, tamper, named):
    db = copy_db(honest_sqlite_db, tmp_path)
    sqlite3_shell(db, tamper)
    result = verify(f"sqlite:///{db}")
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"tampering went unnoticed:\n{output}"
    assert named.search(output), f"the report should name the culprit:\n{output}"


def test_verify_on_postgresql(make_server):
    server = make_server("postgresql", kind="cairn")
    record_a_session(server)
    server.stop()

    result = verify(server.backend_uri)
    assert result.returncode == 0, result.stdout + result.stderr

    # The clean run recorded a checkpoint, so a plain verify now checks the chain after it only;
    # a live row edited behind the server's back takes the full pass to find.
    run_psql(server.backend_uri, "UPDATE params SET value = 'x' WHERE key = 'lr'")
    result = verify(server.backend_uri)
    assert result.returncode == 0 and "checkpoint" in result.stdout, result.stdout + result.stderr
    result = cairn_cli("audit", "verify", "--full", "--backend-store-uri", server.backend_uri)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"tampering went unnoticed:\n{output}"
    assert EVENT.search(output), output
    run_psql(server.backend_uri, "UPDATE params SET value = '0.1' WHERE key = 'lr'")

    # One changed byte of a stored payload after the checkpoint, and of a hash before it.
    run_psql(
        server.backend_uri,
        "UPDATE audit_events SET payload = overlay(payload PLACING '\\xff'::bytea FROM 6 FOR 1) "
        "WHERE seq = (SELECT max(seq) FROM audit_events)",
    )
    result = verify(server.backend_uri)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"tampering went unnoticed:\n{output}"
    assert EVENT.search(output), output


def test_incremental_verify_checks_the_checkpoint(make_server, tmp_path):
    """A plain verify after a clean one starts at its checkpoint; changing an event the checkpoint
    vouches for, or the checkpoint itself, is still reported, and `--full` rechecks everything."""
    server = make_server("sqlite", kind="cairn")
    record_a_session(server)
    server.stop()
    uri = f"sqlite:///{server.sqlite_path}"
    first = verify(uri)
    assert first.returncode == 0 and "live tables match" in first.stdout, first.stdout + first.stderr
    again = verify(uri)
    assert again.returncode == 0 and "after the checkpoint" in again.stdout, again.stdout + again.stderr

    # An event from before the checkpoint is the full pass's to check.
    copy = copy_db(server.sqlite_path, tmp_path)
    sqlite3_shell(copy, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    assert verify(f"sqlite:///{copy}").returncode == 0
    full = cairn_cli("audit", "verify", "--full", "--backend-store-uri", f"sqlite:///{copy}")
    assert full.returncode != 0 and "event 2" in full.stdout + full.stderr, full.stdout + full.stderr

    # The newest checkpoint names the one before it; rewriting that one's hash is caught
    # without the full pass.
    sqlite3_shell(
        server.sqlite_path,
        "UPDATE audit_events SET hash = randomblob(32) WHERE seq = "
        "(SELECT max(seq) FROM audit_events WHERE action = 'verify_checkpoint') - 1",
    )
    result = verify(uri)
    assert result.returncode != 0 and "checkpoint" in result.stdout + result.stderr, result.stdout + result.stderr
