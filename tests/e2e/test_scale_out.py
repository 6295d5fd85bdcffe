"""Scale-out as deployed: three `cairn server` replicas on one PostgreSQL database and one S3
bucket (moto), behind a real HAProxy configured by `deploy/haproxy/cairn.cfg`. Eight processes
with the real `mlflow` client log runs, metrics, artifacts (multipart uploads whose parts reach
different replicas) and registry changes through the balancer while one replica is killed with
`kill -9` and restarted, another is drained with SIGTERM, and two garbage collections run at once.

Afterwards every acknowledged write is there, every file has the bytes that were sent, the audit
chain and the blobs verify, and collections on two processes at once removed exactly the blobs no
one references. The test asserts correctness only; speed is the benchmark's business.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from mlflow.tracking import MlflowClient

from servers import LoadBalancer, Server, cairn_binary, cairn_cli, create_postgres_database, free_port

pytestmark = pytest.mark.cairn_only

CLIENTS = 8
ITERATIONS = 7
CLIENT_SCRIPT = Path(__file__).with_name("scale_out_client.py")


def records(outs: list[Path]) -> list[dict]:
    found = []
    for out in outs:
        try:
            found.append(json.loads(out.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass
    return found


def wait_for_runs(outs: list[Path], procs: list[subprocess.Popen], at_least: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(len(r["runs"]) for r in records(outs)) >= at_least:
            return
        failed = [p for p in procs if p.poll() not in (None, 0)]
        assert not failed, "a client failed before the faults began"
        time.sleep(0.2)
    raise AssertionError(f"the clients did not log {at_least} runs in {timeout}s")


def blob_key(prefix: str, digest: str) -> str:
    return f"{prefix}/blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}"


def blob_exists(s3, bucket: str, key: str) -> bool:
    return s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 1


def test_three_replicas_behind_haproxy_lose_nothing(postgres_admin_url, moto, tmp_path):
    db = create_postgres_database(postgres_admin_url)
    bucket, prefix = moto.create_bucket(), "cairn"
    destination = f"s3://{bucket}/{prefix}"
    ports = [free_port() for _ in range(3)]
    replicas = []
    for n, port in enumerate(ports):
        workdir = tmp_path / f"replica{n + 1}"
        workdir.mkdir()
        replicas.append(
            Server(
                kind="cairn",
                backend="postgresql",
                backend_uri=db,
                workdir=workdir,
                artifacts_destination=destination,
                env=moto.server_env(),
                args=["--drain-delay", "2s"],
                fixed_port=port,
            )
        )
    (tmp_path / "lb").mkdir()
    balancer = LoadBalancer(tmp_path / "lb", ports)
    procs: list[subprocess.Popen] = []
    cli_env = {**moto.server_env(), "CAIRN_BACKEND_STORE_URI": db, "CAIRN_ARTIFACTS_DESTINATION": destination}
    try:
        # All three start at once on an empty database: the migrations must run once, not race.
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(Server.start, replicas))
        balancer.start()

        client = MlflowClient(tracking_uri=balancer.url)
        experiment_id = client.create_experiment("scale-out")
        env = {
            **os.environ,
            "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
            "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(1024 * 1024),
            "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(1024 * 1024),
            # The client script retries failed calls itself and counts them.
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        outs = [tmp_path / f"client{n}.json" for n in range(CLIENTS)]
        logs = [open(tmp_path / f"client{n}.log", "w", encoding="utf-8") for n in range(CLIENTS)]
        for n in range(CLIENTS):
            command = [sys.executable, str(CLIENT_SCRIPT), balancer.url, experiment_id, str(n), str(ITERATIONS)]
            procs.append(subprocess.Popen([*command, str(outs[n])], env=env, stdout=logs[n], stderr=subprocess.STDOUT))

        # Faults while the clients are busy. First a crash: no chance to flush or drain.
        wait_for_runs(outs, procs, CLIENTS)
        replicas[0].kill()
        time.sleep(1.0)
        replicas[0].start()

        # Two collections at once, on two processes, with no grace period, while uploads are in
        # flight: the uploads' pins in the shared database are all that keeps their blobs. They
        # purge no run (a run the clients delete meanwhile must keep its blob until the final
        # collection below purges it), so what they may remove is only what nothing references.
        collections = [
            subprocess.Popen(
                [str(cairn_binary()), "gc", "--older-than", "1h", "--grace", "0s", "--data-dir", str(tmp_path / f"gc{n}")],
                env={**os.environ, **cli_env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for n in range(2)
        ]

        # Then a drain: not ready first (so the balancer moves traffic away), still serving,
        # then a clean exit.
        wait_for_runs(outs, procs, CLIENTS * 3)
        draining = replicas[1]
        os.killpg(draining.pid, signal.SIGTERM)
        direct = f"http://127.0.0.1:{draining.port}"
        deadline = time.monotonic() + 2
        ready = requests.get(direct + "/ready", timeout=5)
        while ready.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
            ready = requests.get(direct + "/ready", timeout=5)
        assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
        assert requests.get(direct + "/health", timeout=5).status_code == 200, "still serving while draining"
        assert draining.proc.wait(timeout=60) == 0, draining.log_tail()
        draining.proc = None
        draining.start()

        for proc in procs:
            proc.wait(timeout=600)
        for log in logs:
            log.close()
        for n, proc in enumerate(procs):
            assert proc.returncode == 0, (tmp_path / f"client{n}.log").read_text(encoding="utf-8")[-3000:]
        for gc in collections:
            output, _ = gc.communicate(timeout=300)
            assert gc.returncode == 0, output

        done = records(outs)
        assert len(done) == CLIENTS and all(len(r["runs"]) == ITERATIONS for r in done)
        retries = sum(r["retries"] for r in done)
        print(f"{CLIENTS * ITERATIONS} runs acknowledged through the balancer; {retries} calls retried")

        # Every acknowledged write is there, read back through the balancer.
        s3 = moto.client()
        for record in done:
            for run in record["runs"]:
                got = client.get_run(run["run_id"])
                assert got.data.params == run["params"]
                assert got.info.status == "FINISHED"
                history = {(m.step, m.value) for m in client.get_metric_history(run["run_id"], "loss")}
                assert {(step, value) for step, value in run["metrics"]} <= history
                listed = {
                    f.path
                    for folder in ("notes", "model")
                    for f in client.list_artifacts(run["run_id"], folder)
                }
                assert listed == set(run["files"]), "each file once, none missing, none extra"
                for path, digest in run["files"].items():
                    local = client.download_artifacts(run["run_id"], path, str(tmp_path / "downloads"))
                    assert hashlib.sha256(Path(local).read_bytes()).hexdigest() == digest, path
            model = f"scale-model-{record['worker']}"
            for version in record["versions"]:
                assert client.get_model_version(model, version["version"]).run_id == version["run_id"]
            assert client.get_model_version_by_alias(model, "champion").version == record["alias"]
            for doomed in record["deleted"]:
                assert blob_exists(s3, bucket, blob_key(prefix, doomed["sha256"])), "deleted, not yet purged"

        verified = cairn_cli("audit", "verify", env=cli_env)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        checked = cairn_cli("artifacts", "verify", env=cli_env)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        # Two collectors at once again, after the load: they remove the purged runs' blobs and
        # nothing that is referenced.
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(
                lambda n: cairn_cli("gc", "--older-than", "0s", "--grace", "0s", "--data-dir",
                                    str(tmp_path / f"gc-final{n}"), env=cli_env),
                range(2),
            ))
        for result in results:
            assert result.returncode == 0, result.stdout + result.stderr
        for record in done:
            for doomed in record["deleted"]:
                assert not blob_exists(s3, bucket, blob_key(prefix, doomed["sha256"])), "unreferenced: collected"
            for run in record["runs"]:
                for digest in run["files"].values():
                    assert blob_exists(s3, bucket, blob_key(prefix, digest)), "referenced: kept"
        checked = cairn_cli("artifacts", "verify", env=cli_env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        balancer.stop()
        for replica in replicas:
            replica.stop()


def test_ready_turns_503_on_sigterm_while_health_stays_200(make_server):
    server = make_server("sqlite", args=["--drain-delay", "3s"])
    assert (requests.get(server.url + "/ready", timeout=5).json()) == {"status": "ok"}
    # Like /health, /ready answers whatever Host a balancer probes with.
    probe = requests.get(server.url + "/ready", headers={"Host": "10.0.0.7:5000"}, timeout=5)
    assert probe.status_code == 200
    os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + 2
    ready = requests.get(server.url + "/ready", timeout=5)
    while ready.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
        ready = requests.get(server.url + "/ready", timeout=5)
    assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
    # Still serving the API during the delay, so requests routed before the balancer noticed work.
    experiments = requests.post(
        server.url + "/api/2.0/mlflow/experiments/search", json={"max_results": 1}, timeout=5
    )
    assert experiments.status_code == 200
    assert server.proc.wait(timeout=30) == 0
    server.proc = None
