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


# Artifacts and registry writes while the server is down: scripts use the experiment's id, as
# `mlflow.set_experiment` reads the server (reads are not spooled).
ARTIFACT_SCRIPT = """\
import os
import mlflow
with mlflow.start_run(experiment_id=os.environ["EXPERIMENT_ID"]) as run:
    mlflow.log_param("lr", "0.1")
    mlflow.log_artifact("data/weights.bin")
    mlflow.log_artifacts("data/folder", "folder")
    mlflow.log_artifact("data/weights.bin", "copy")  # the same bytes again: one blob
    mlflow.log_text("written offline", "notes/readme.txt")
    mlflow.log_dict({"layers": 3, "sizes": [1, 2]}, "config.json")
print(run.info.run_id)
"""

EXPECTED_ARTIFACTS = {
    "weights.bin": bytes(range(256)) * 40,
    "folder/a.txt": b"alpha\n",
    "folder/sub/b.csv": b"x,y\n1,2\n",
    "copy/weights.bin": bytes(range(256)) * 40,
    "notes/readme.txt": b"written offline",
}


def dirty_job(tmp_path: Path) -> Path:
    """A git checkout with an uncommitted change (so the run captures a patch) and the files the
    script logs."""
    from conftest import git

    job = tmp_path / "job"
    (job / "data" / "folder" / "sub").mkdir(parents=True)
    (job / "train.py").write_text(ARTIFACT_SCRIPT)
    (job / "model.py").write_text("LAYERS = 2\n")
    (job / ".gitignore").write_text("data/\n")
    git(job, "init", "-q", "-b", "main")
    git(job, "add", ".")
    git(job, "commit", "-q", "-m", "first")
    (job / "model.py").write_text("LAYERS = 3\n")
    (job / "data" / "weights.bin").write_bytes(EXPECTED_ARTIFACTS["weights.bin"])
    (job / "data" / "folder" / "a.txt").write_bytes(EXPECTED_ARTIFACTS["folder/a.txt"])
    (job / "data" / "folder" / "sub" / "b.csv").write_bytes(EXPECTED_ARTIFACTS["folder/sub/b.csv"])
    return job


def run_offline(server: Server, job: Path, script: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs the job's script against `server`, which the caller stopped."""
    if script is not None:
        (job / "train.py").write_text(script)
    full = {**os.environ, "MLFLOW_TRACKING_URI": server.url, **env}
    return subprocess.run([sys.executable, "train.py"], cwd=job, env=full, capture_output=True, text=True, timeout=180)


def artifact_job_journaled(server: Server, tmp_path: Path) -> tuple[str, Journal]:
    """Runs the dirty job with `CAIRN_OFFLINE=1` against `server`: its run id, and the journal
    holding its writes and artifacts."""
    mlflow.set_tracking_uri(server.url)
    experiment_id = MlflowClient().create_experiment("artifacts")
    done = run_offline(server, dirty_job(tmp_path), CAIRN_OFFLINE="1", EXPERIMENT_ID=experiment_id)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1], Journal(path_for(server.url))


def all_artifacts(run_id: str, path: str | None = None) -> list[str]:
    out: list[str] = []
    for f in MlflowClient().list_artifacts(run_id, path):
        out.extend(all_artifacts(run_id, f.path) if f.is_dir else [f.path])
    return sorted(out)


def artifact_bytes(run_id: str, path: str, tmp: Path) -> bytes:
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(tmp))
    return Path(local).read_bytes()


def assert_artifacts_synced(run_id: str, tmp: Path) -> None:
    """Every artifact the script logged, with its bytes, the capture's patch, and nothing twice."""
    import hashlib
    import json

    paths = all_artifacts(run_id)
    assert len(paths) == len(set(paths))
    logged = {p for p in paths if not p.startswith("cairn/")}
    assert logged == set(EXPECTED_ARTIFACTS) | {"config.json"}, paths
    for i, (path, data) in enumerate(EXPECTED_ARTIFACTS.items()):
        assert artifact_bytes(run_id, path, tmp / f"dl{i}") == data, path
    assert json.loads(artifact_bytes(run_id, "config.json", tmp / "dl-config")) == {"layers": 3, "sizes": [1, 2]}
    tags = MlflowClient().get_run(run_id).data.tags
    assert "cairn.capture.error" not in tags, tags.get("cairn.capture.error")
    patch = artifact_bytes(run_id, "cairn/code/uncommitted.patch", tmp / "dl-patch")
    assert hashlib.sha256(patch).hexdigest() == tags["cairn.source.git.diff_digest"]
    assert b"+LAYERS = 3" in patch
    assert any(p.startswith("cairn/environment/") for p in paths), paths


def artifact_entries(journal: Journal) -> list[dict[str, object]]:
    return [e.body for e in journal.entries() if e.route == sync.ARTIFACT_ROUTE]


def test_artifacts_logged_while_the_server_is_down_are_spooled_and_uploaded_by_cairn_sync(
    own_server: Server, tmp_path: Path
) -> None:
    mlflow.set_tracking_uri(own_server.url)
    experiment_id = MlflowClient().create_experiment("artifacts")
    job = dirty_job(tmp_path)
    own_server.stop()
    done = run_offline(own_server, job, EXPERIMENT_ID=experiment_id)
    assert done.returncode == 0, done.stderr
    assert "captured files are not uploaded" not in done.stderr
    run_id = done.stdout.strip().splitlines()[-1]

    journal = Journal(path_for(own_server.url))
    entries = artifact_entries(journal)
    paths = [str(e["path"]) for e in entries]
    assert set(EXPECTED_ARTIFACTS) | {"config.json", "cairn/code/uncommitted.patch"} <= set(paths)
    digests = {str(e["digest"]) for e in entries}
    # Content-addressed: weights.bin logged twice is stored once.
    assert sorted(p.name for p in journal.blob_dir.iterdir()) == sorted(digests)
    assert len(digests) == len(entries) - 1

    own_server.start()
    synced = cairn_sync()
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert len(journal) == 0 and journal.rejected() == []
    assert list(journal.blob_dir.iterdir()) == []  # no entry needs them any more
    assert MlflowClient().get_run(run_id).info.status == "FINISHED"
    assert_artifacts_synced(run_id, tmp_path)


def test_an_artifact_sync_interrupted_half_way_and_run_again_duplicates_nothing(
    own_server: Server, tmp_path: Path
) -> None:
    run_id, journal = artifact_job_journaled(own_server, tmp_path)
    entries = journal.entries()
    first_artifact = next(i for i, e in enumerate(entries) if e.route == sync.ARTIFACT_ROUTE)
    stop = first_artifact + 3  # some of the artifacts are uploaded, not all
    first = cairn_sync("--limit", str(stop))
    assert first.returncode == 1 and len(journal) == len(entries) - stop
    # The process "dies" after the server took the next four writes (artifacts among them) but
    # before they left the journal: the next sync sends them again.
    from cairn.mlflow_plugin.artifacts import upload_blob

    settings = resolve(own_server.url, max_retries=0)
    transport = Transport(settings)
    subst = journal.substitutions()
    for entry in journal.entries()[:4]:
        body = sync.substitute(entry.body, subst)
        if entry.route == sync.ARTIFACT_ROUTE:
            assert entry.blob is not None
            upload_blob(settings, body, journal.blob_path(entry.blob))
        else:
            method, _, path = entry.route.partition(" ")
            transport.request(method, path, json=body, headers={"Idempotency-Key": entry.idempotency_key})
    again = cairn_sync()
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(journal) == 0 and journal.rejected() == []
    assert_artifacts_synced(run_id, tmp_path)
    assert MlflowClient().get_run(run_id).data.params == {"lr": "0.1"}


def test_a_tampered_artifact_blob_is_reported_as_corruption_and_nothing_is_applied(
    own_server: Server, tmp_path: Path
) -> None:
    run_id, journal = artifact_job_journaled(own_server, tmp_path)
    before = len(journal)
    weights = next(e for e in artifact_entries(journal) if e["path"] == "weights.bin")
    blob = journal.blob_path(str(weights["digest"]))
    blob.write_bytes(blob.read_bytes()[:-1] + b"!")  # same size, one byte changed

    result = cairn_sync()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "corrupt" in result.stderr and "weights.bin" in result.stderr and "nothing was replayed" in result.stderr
    assert len(Journal(path_for(own_server.url))) == before
    with pytest.raises(mlflow.exceptions.MlflowException):
        MlflowClient().get_run(run_id)  # not even the run: nothing before the blob either
    # Once the file is restored, everything goes through.
    blob.write_bytes(EXPECTED_ARTIFACTS["weights.bin"])
    assert cairn_sync().returncode == 0
    assert_artifacts_synced(run_id, tmp_path)


def test_an_artifact_logged_while_a_server_is_down_mid_run_is_uploaded_when_it_is_back(
    own_server: Server, tmp_path: Path
) -> None:
    mlflow.set_tracking_uri(own_server.url)
    mlflow.set_experiment("outage-artifacts")
    with pytest.warns(UserWarning, match="unreachable"):
        with mlflow.start_run() as run:
            mlflow.log_text("before", "before.txt")
            own_server.stop()
            mlflow.log_text("during", "during.txt")
            mlflow.log_metric("loss", 0.5, step=1)
            own_server.start()
            mlflow.log_text("after", "after.txt")
    assert sync.spool_for(own_server.url).flush()
    run_id = run.info.run_id
    logged = [p for p in all_artifacts(run_id) if not p.startswith("cairn/")]  # not the capture's
    assert logged == ["after.txt", "before.txt", "during.txt"]
    assert artifact_bytes(run_id, "during.txt", tmp_path / "dl") == b"during"
    assert steps(run_id) == [1]


def test_an_artifact_over_the_spool_size_limit_fails_clearly(own_server: Server, tmp_path: Path) -> None:
    mlflow.set_tracking_uri(own_server.url)
    experiment_id = MlflowClient().create_experiment("big")
    job = tmp_path / "job"
    job.mkdir()
    (job / "big.bin").write_bytes(b"x" * 2000)
    script = (
        "import os, mlflow\n"
        "with mlflow.start_run(experiment_id=os.environ['EXPERIMENT_ID']):\n"
        "    mlflow.log_artifact('big.bin')\n"
    )
    done = run_offline(own_server, job, script, CAIRN_OFFLINE="1", EXPERIMENT_ID=experiment_id,
                       CAIRN_SPOOL_MAX_ARTIFACT_BYTES="1000", CAIRN_CAPTURE="0")
    assert done.returncode != 0
    assert "CAIRN_SPOOL_MAX_ARTIFACT_BYTES" in done.stderr and "not spooled" in done.stderr
    journal = Journal(path_for(own_server.url))
    assert artifact_entries(journal) == [] and not any(journal.blob_dir.glob("*"))


REGISTRY_SCRIPT = """\
import json
import os
import mlflow
from mlflow import MlflowClient

client = MlflowClient()
with mlflow.start_run(experiment_id=os.environ["EXPERIMENT_ID"]) as run:
    mlflow.log_text("flavors: {}", "model/MLmodel")
source = run.info.artifact_uri + "/model"
# An existing model (created before the outage): register_model carries on with it. It lists
# the run's folder for the MLmodel, answered from the journal.
mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn", tags={"data": "v2"})
client.set_registered_model_alias("churn", "champion", mv.version)
client.set_model_version_tag("churn", mv.version, "validated", "yes")
client.update_model_version("churn", mv.version, description="trained offline")
# A new model.
client.create_registered_model("fraud", tags={"team": "risk"}, description="fraud model")
first = client.create_model_version("fraud", source, run_id=run.info.run_id)
second = client.create_model_version("fraud", source, run_id=run.info.run_id, tags={"k": "v"})
client.set_registered_model_alias("fraud", "newest", second.version)
client.transition_model_version_stage("fraud", first.version, "Staging")
client.set_registered_model_tag("fraud", "reviewed", "no")
print(json.dumps({"run_id": run.info.run_id, "churn": mv.version, "status": mv.status,
                  "fraud": [first.version, second.version]}))
"""


@pytest.mark.parametrize("step_by_step", [False, True])
def test_registry_writes_made_offline_get_the_real_versions_when_synced(
    own_server: Server, tmp_path: Path, step_by_step: bool
) -> None:
    import json

    mlflow.set_tracking_uri(own_server.url)
    client = MlflowClient()
    experiment_id = client.create_experiment("registry")
    client.create_registered_model("churn")
    with mlflow.start_run(experiment_id=experiment_id) as before:
        mlflow.log_text("flavors: {}", "model/MLmodel")
    client.create_model_version("churn", f"{before.info.artifact_uri}/model", run_id=before.info.run_id)  # 1
    from cairn.mlflow_plugin.store import uploader

    assert uploader.wait()  # that run's captured files are uploaded before the outage
    job = tmp_path / "job"
    job.mkdir()
    own_server.stop()
    done = run_offline(own_server, job, REGISTRY_SCRIPT, EXPERIMENT_ID=experiment_id, CAIRN_CAPTURE="0")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert int(out["churn"]) < 0 and out["status"] == "PENDING_REGISTRATION"
    assert all(int(v) < 0 for v in out["fraud"]) and len(set(out["fraud"])) == 2

    own_server.start()
    if step_by_step:
        # One entry per cairn-sync process: what a replay learns survives the process.
        for _ in range(200):
            result = cairn_sync("--limit", "1")
            if result.returncode == 0:
                break
            assert result.returncode == 1, result.stdout + result.stderr
    else:
        result = cairn_sync()
    assert result.returncode == 0, result.stdout + result.stderr
    journal = Journal(path_for(own_server.url))
    assert len(journal) == 0 and journal.rejected() == []

    churn = client.get_model_version_by_alias("churn", "champion")
    assert churn.version == "2" and churn.tags == {"data": "v2", "validated": "yes"}
    assert churn.description == "trained offline" and churn.run_id == out["run_id"]
    assert churn.source.endswith(f"/{out['run_id']}/artifacts/model")
    assert [v.version for v in client.search_model_versions("name='churn'")] in (["2", "1"], ["1", "2"])

    fraud = client.get_registered_model("fraud")
    assert fraud.description == "fraud model" and fraud.tags == {"team": "risk", "reviewed": "no"}
    assert fraud.aliases == {"newest": "2"}
    assert client.get_model_version("fraud", "1").current_stage == "Staging"
    assert client.get_model_version("fraud", "2").tags == {"k": "v"}
    assert sorted(v.version for v in client.search_model_versions("name='fraud'")) == ["1", "2"]
    # The model's files were spooled too, before the versions pointing at them.
    assert all_artifacts(out["run_id"]) == ["model/MLmodel"]


LOG_MODEL_SCRIPT = """\
import json
import os
import mlflow
import mlflow.pyfunc

class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input * 2

with mlflow.start_run(experiment_id=os.environ["EXPERIMENT_ID"]) as run:
    mlflow.log_param("lr", "0.1")
    mlflow.log_metric("loss", 0.1)
    info = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), registered_model_name="doubler")
    mlflow.log_metric("loss", 0.05, step=1)
print(json.dumps({"run_id": run.info.run_id, "model_id": info.model_id, "version": info.registered_model_version}))
"""


def test_log_model_offline_is_synced_under_its_id_with_its_files_run_output_and_version(
    own_server: Server, tmp_path: Path
) -> None:
    import json

    import pandas as pd

    mlflow.set_tracking_uri(own_server.url)
    experiment_id = MlflowClient().create_experiment("log-model")
    job = tmp_path / "job"
    job.mkdir()
    own_server.stop()
    done = run_offline(own_server, job, LOG_MODEL_SCRIPT, EXPERIMENT_ID=experiment_id, CAIRN_CAPTURE="0")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    model_id, run_id = out["model_id"], out["run_id"]
    assert model_id.startswith("m-") and len(model_id) == 34
    journal = Journal(path_for(own_server.url))
    routes = [e.route for e in journal.entries()]
    assert f"PUT /api/cairn/v1/logged-models/{model_id}" in routes
    assert any(e["path"] == "MLmodel" and f"/models/{model_id}/" in e["artifact_uri"] for e in artifact_entries(journal))

    own_server.start()
    synced = cairn_sync()
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert len(journal) == 0 and journal.rejected() == []

    client = MlflowClient()
    model = client.get_logged_model(model_id)
    assert model.status == "READY" and model.source_run_id == run_id and model.experiment_id == experiment_id
    assert model.name == "model" and model.params.get("lr") == "0.1"
    assert model.artifact_location.endswith(f"/models/{model_id}/artifacts")
    # The files logged offline are the model: it loads from the server and predicts.
    loaded = mlflow.pyfunc.load_model(f"models:/{model_id}")
    assert loaded.predict(pd.DataFrame({"x": [1, 2]}))["x"].tolist() == [2, 4]
    run = client.get_run(run_id)
    assert [o.model_id for o in run.outputs.model_outputs] == [model_id]
    assert run.info.status == "FINISHED" and steps(run_id) == [0, 1]
    # MLflow's client leaves a version's model_id out of its entity; the server's answer has it.
    transport = Transport(resolve(own_server.url))
    version = transport.request("GET", "/api/2.0/mlflow/model-versions/get", params={"name": "doubler", "version": "1"})
    assert version["model_version"]["model_id"] == model_id and version["model_version"]["run_id"] == run_id
    assert int(out["version"]) < 0  # the placeholder the script saw, until synced
    # The model's list of its versions names the real version, not the placeholder.
    assert json.loads(client.get_logged_model(model_id).tags["mlflow.modelVersions"]) == [
        {"name": "doubler", "version": "1"}
    ]
    verify = own_server.audit_verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr


IMAGE_SCRIPT = """\
import os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np

image = (np.arange(16 * 16 * 3) % 255).astype(np.uint8).reshape(16, 16, 3)
with mlflow.start_run(experiment_id=os.environ["EXPERIMENT_ID"]) as run:
    mlflow.log_image(image, "plots/image.png")
    mlflow.log_image(image, key="sample", step=3)  # MLflow 3's image series
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    mlflow.log_figure(fig, "plots/figure.png")
    mlflow.log_table({"a": [1, 2], "b": ["x", "y"]}, "table.json")
print(run.info.run_id)
"""


def test_images_figures_and_tables_logged_offline_are_uploaded_with_their_bytes(
    own_server: Server, tmp_path: Path
) -> None:
    import hashlib

    mlflow.set_tracking_uri(own_server.url)
    experiment_id = MlflowClient().create_experiment("images")
    job = tmp_path / "job"
    job.mkdir()
    own_server.stop()
    done = run_offline(own_server, job, IMAGE_SCRIPT, EXPERIMENT_ID=experiment_id, CAIRN_CAPTURE="0")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]
    journal = Journal(path_for(own_server.url))
    spooled = {str(e["path"]): str(e["digest"]) for e in artifact_entries(journal)}
    assert {"plots/image.png", "plots/figure.png", "table.json"} <= set(spooled)
    assert any(p.startswith("images/sample") for p in spooled), spooled

    own_server.start()
    synced = cairn_sync()
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert journal.rejected() == []
    assert all_artifacts(run_id) == sorted(spooled)
    for i, (path, digest) in enumerate(spooled.items()):
        assert hashlib.sha256(artifact_bytes(run_id, path, tmp_path / f"dl{i}")).hexdigest() == digest, path


def test_a_journal_written_before_artifacts_were_spooled_is_still_replayed(own_server: Server, spool_dir: Path) -> None:
    """A journal left by the previous version (no `blob` column, no substitutions table) is
    migrated when opened and replayed as it was."""
    import json
    import uuid

    from cairn.spool.journal import checksum

    mlflow.set_tracking_uri(own_server.url)
    experiment_id = MlflowClient().create_experiment("old-journal")
    path = path_for(own_server.url)
    path.parent.mkdir(parents=True)
    run_id = uuid.uuid4().hex
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, route TEXT NOT NULL, body TEXT NOT NULL,"
            " idempotency_key TEXT NOT NULL UNIQUE, checksum TEXT NOT NULL, created_at REAL NOT NULL);"
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE rejected (seq INTEGER PRIMARY KEY, route TEXT NOT NULL, body TEXT NOT NULL, error TEXT NOT NULL);"
        )
        db.execute("INSERT INTO meta VALUES ('server_url', ?)", (own_server.url,))
        for route, body in [
            (f"PUT /api/cairn/v1/runs/{run_id}", {"experiment_id": experiment_id, "run_name": "old", "start_time": 1}),
            ("POST /api/2.0/mlflow/runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"}),
        ]:
            text = json.dumps(body, sort_keys=True, separators=(",", ":"))
            key = uuid.uuid4().hex
            db.execute("INSERT INTO entries (route, body, idempotency_key, checksum, created_at) VALUES (?, ?, ?, ?, 0)",
                       (route, text, key, checksum(route, text, key)))
    synced = cairn_sync()
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert MlflowClient().get_run(run_id).data.params == {"lr": "0.1"}
