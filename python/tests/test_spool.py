"""The offline spool: writes through the unchanged mlflow client survive a server outage, are
replayed in order exactly once, and a damaged journal is reported rather than half-applied.

Every test runs against a server on SQLite and on PostgreSQL (when `CAIRN_TEST_POSTGRES_URL` is
set): exactly-once rests on the server's Idempotency-Key records, which each backend keeps."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from cairn._config import resolve
from cairn._transport import Transport
from cairn.spool import sync
from cairn.spool.journal import Journal, path_for
from conftest import BACKENDS, Server

OFFLINE_SCRIPT = """\
import mlflow
mlflow.set_experiment("offline")
with mlflow.start_run() as run:
    mlflow.log_param("lr", "0.1")
    for step in range(30):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.set_tag("phase", "done")
print(run.info.run_id)
"""


@pytest.fixture(params=BACKENDS)
def own_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, on each backend, which the test may stop and start again."""
    s = Server(tmp_path / "server", backend=request.param).start()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "spool"
    monkeypatch.setenv("CAIRN_SPOOL_DIR", str(path))
    return path


def steps(run_id: str, key: str = "loss") -> list[int]:
    return sorted(m.step for m in MlflowClient().get_metric_history(run_id, key))


def cairn_sync(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("cairn-sync")
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120, env=os.environ)


def test_a_server_killed_and_restarted_mid_run_loses_and_duplicates_nothing(own_server: Server) -> None:
    mlflow.set_tracking_uri(own_server.url)
    mlflow.set_experiment("outage")
    with pytest.warns(UserWarning, match="unreachable"):
        with mlflow.start_run() as run:
            for step in range(60):
                if step == 20:
                    own_server.stop()
                if step == 40:
                    own_server.start()
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
                mlflow.log_param(f"p{step % 5}", "x")
    assert sync.spool_for(own_server.url).flush()
    assert steps(run.info.run_id) == list(range(60))
    finished = MlflowClient().get_run(run.info.run_id)
    assert finished.info.status == "FINISHED"
    assert len(finished.data.params) == 5
    verify = own_server.audit_verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_run_created_offline_keeps_its_id_when_synced(own_server: Server, tmp_path: Path) -> None:
    mlflow.set_tracking_uri(own_server.url)
    workdir = tmp_path / "job"
    workdir.mkdir()
    (workdir / "train.py").write_text(OFFLINE_SCRIPT)
    MlflowClient().create_experiment("offline")  # known by name; everything else offline
    env = {**os.environ, "MLFLOW_TRACKING_URI": own_server.url, "CAIRN_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "train.py"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]
    with pytest.raises(mlflow.exceptions.MlflowException):
        MlflowClient().get_run(run_id)  # nothing reached the server

    synced = cairn_sync()
    assert synced.returncode == 0, synced.stdout + synced.stderr
    run = MlflowClient().get_run(run_id)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1"} and run.data.tags["phase"] == "done"
    assert "cairn.environment.digest" in run.data.tags  # the capture tags travelled too
    assert steps(run_id) == list(range(30))
    assert len(Journal(path_for(own_server.url))) == 0


def offline_journal(server: Server, tmp_path: Path) -> str:
    workdir = tmp_path / "job"
    workdir.mkdir(exist_ok=True)
    (workdir / "train.py").write_text(OFFLINE_SCRIPT)
    mlflow.set_tracking_uri(server.url)
    if MlflowClient().get_experiment_by_name("offline") is None:
        MlflowClient().create_experiment("offline")
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "CAIRN_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "train.py"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_sync_interrupted_half_way_and_run_again_duplicates_nothing(own_server: Server, tmp_path: Path) -> None:
    run_id = offline_journal(own_server, tmp_path)
    journal = Journal(path_for(own_server.url))
    total = len(journal)
    # Half the journal is sent, then the "process dies" after the server confirmed five more
    # writes but before they were removed from the journal.
    first = cairn_sync("--limit", str(total // 2))
    assert first.returncode == 1 and len(journal) == total - total // 2
    transport = Transport(resolve(own_server.url, max_retries=0))
    for entry in journal.entries()[:5]:
        method, _, path = entry.route.partition(" ")
        transport.request(method, path, json=entry.body, headers={"Idempotency-Key": entry.idempotency_key})
    again = cairn_sync()
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(journal) == 0 and journal.rejected() == []
    assert steps(run_id) == list(range(30))
    assert MlflowClient().get_run(run_id).info.status == "FINISHED"
    verify = own_server.audit_verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_corrupt_journal_is_reported_and_nothing_is_applied(own_server: Server, tmp_path: Path) -> None:
    run_id = offline_journal(own_server, tmp_path)
    path = path_for(own_server.url)
    with sqlite3.connect(path) as db:
        # A metric value changed behind the journal's back: valid JSON, wrong checksum.
        changed = db.execute(
            "UPDATE entries SET body = replace(body, '\"value\":', '\"value\":1') "
            "WHERE seq = (SELECT MAX(seq) - 3 FROM entries)"
        ).rowcount
        assert changed == 1
    before = len(Journal(path))
    result = cairn_sync()
    assert result.returncode == 2
    assert "damaged" in result.stderr and "nothing was replayed" in result.stderr
    assert len(Journal(path)) == before
    with pytest.raises(mlflow.exceptions.MlflowException):
        MlflowClient().get_run(run_id)


def test_client_writes_are_journaled_offline_and_replayed_in_order(
    own_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cairn

    client = cairn.Client(own_server.url, max_retries=0)
    monkeypatch.setenv("CAIRN_OFFLINE", "1")
    raw = client.register_node("dataset:raw@1", digest="a" * 64)
    clean = client.register_node("dataset:clean@1", digest="b" * 64)
    edge = client.derive("dataset:clean@1", "dataset:raw@1")
    assert raw["spooled"] and clean["spooled"] and edge["spooled"]
    with pytest.raises(cairn.NotFound):
        client.get_node("dataset:raw@1")  # reads need the server, and it has nothing yet
    monkeypatch.delenv("CAIRN_OFFLINE")
    assert sync.spool_for(own_server.url).flush()
    upstream = client.upstream("dataset:clean@1")
    assert {n["id"] for n in upstream["nodes"]} == {"dataset:clean@1", "dataset:raw@1"}


def test_concurrent_requests_with_one_idempotency_key_apply_the_write_once(own_server: Server) -> None:
    """Two processes replaying the same journal at once (say `cairn-sync` and the job itself)
    send each entry twice at the same moment: the server applies it once and both get the
    same answer."""
    import threading

    mlflow.set_tracking_uri(own_server.url)
    experiment_id = MlflowClient().create_experiment("race")
    body = {"experiment_id": experiment_id, "run_name": "once"}
    answers: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def send() -> None:
        transport = Transport(resolve(own_server.url, max_retries=3))
        try:
            start.wait()
            answer = transport.request("POST", "/api/2.0/mlflow/runs/create", json=body,
                                       headers={"Idempotency-Key": "race-1"})
            answers.append(answer["run"]["info"]["run_id"])
        except BaseException as e:  # reported below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(answers) == 8 and len(set(answers)) == 1, (errors, answers)
    runs = MlflowClient().search_runs([experiment_id])
    assert [r.info.run_id for r in runs] == answers[:1]
