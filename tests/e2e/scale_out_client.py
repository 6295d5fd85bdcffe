"""One client process of the scale-out test (`test_scale_out.py`): the real `mlflow` client logging
runs, metrics, artifacts (multipart uploads included) and registry changes through the load
balancer while replicas are killed and drained behind it.

It writes what the servers acknowledged to a JSON file: an operation counts only once a call
returned without error. A call that fails (the replica it reached died mid-request, say) is
retried, as a careful user's script would; the count of retries is reported too.

    python scale_out_client.py <tracking-uri> <experiment-id> <worker> <iterations> <out.json>
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

ATTEMPTS = 40


def main() -> int:
    uri, experiment_id, worker, iterations, out = sys.argv[1:6]
    worker, iterations = int(worker), int(iterations)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    record: dict = {"worker": worker, "runs": [], "versions": [], "alias": None, "retries": 0, "deleted": []}

    def attempt(what, call):
        for n in range(ATTEMPTS):
            try:
                return call()
            except Exception as error:  # noqa: BLE001 - any failure of one request is retried
                if n == ATTEMPTS - 1:
                    raise RuntimeError(f"worker {worker}: {what} failed {ATTEMPTS} times: {error}") from error
                record["retries"] += 1
                time.sleep(0.25)

    model = f"scale-model-{worker}"

    def create_model():
        try:
            client.create_registered_model(model)
        except MlflowException as error:
            # A retry of a create the server did commit before the connection broke.
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    attempt("create_registered_model", create_model)
    scratch = Path(tempfile.mkdtemp(prefix=f"scale-{worker}-"))
    for i in range(iterations):
        run = attempt("create_run", lambda: client.create_run(experiment_id, run_name=f"w{worker}-{i}"))
        run_id = run.info.run_id
        params = {"worker": str(worker), "iteration": str(i), "lr": f"0.{i + 1}"}
        metrics = [(step, float(worker * 1000 + i * 10 + step)) for step in range(5)]
        now = int(time.time() * 1000)
        attempt(
            "log_batch",
            lambda: client.log_batch(
                run_id,
                metrics=[Metric("loss", value, now, step) for step, value in metrics],
                params=[Param(k, v) for k, v in params.items()],
                tags=[RunTag("scale.worker", str(worker))],
            ),
        )
        files = {}
        note = scratch / f"note-{i}.txt"
        note.write_text(f"worker {worker} iteration {i}\n" * 50, encoding="utf-8")
        attempt("log_artifact", lambda: client.log_artifact(run_id, str(note), "notes"))
        files[f"notes/{note.name}"] = hashlib.sha256(note.read_bytes()).hexdigest()
        if i % 3 == 0:
            # Above the multipart threshold the test sets: parts go through the balancer, so they
            # reach different replicas.
            big = scratch / f"weights-{i}.bin"
            big.write_bytes(os.urandom(3 * 1024 * 1024 + 123))
            attempt("log_artifact (multipart)", lambda: client.log_artifact(run_id, str(big), "model"))
            files[f"model/{big.name}"] = hashlib.sha256(big.read_bytes()).hexdigest()
        attempt("set_terminated", lambda: client.set_terminated(run_id, "FINISHED"))
        record["runs"].append({"run_id": run_id, "params": params, "metrics": metrics, "files": files})
        if i % 4 == 1:
            version = attempt(
                "create_model_version",
                lambda: client.create_model_version(model, f"runs:/{run_id}/notes", run_id),
            )
            attempt("set_alias", lambda: client.set_registered_model_alias(model, "champion", version.version))
            record["versions"].append({"version": version.version, "run_id": run_id})
            record["alias"] = version.version
        if i == iterations - 1:
            # One run's artifacts become garbage once it is deleted and purged: the collector
            # must remove its unique blob and nothing anyone still references.
            doomed = attempt("create_run", lambda: client.create_run(experiment_id, run_name=f"w{worker}-doomed"))
            junk = scratch / "junk.bin"
            junk.write_bytes(os.urandom(4096))
            attempt("log_artifact", lambda: client.log_artifact(doomed.info.run_id, str(junk)))
            attempt("delete_run", lambda: client.delete_run(doomed.info.run_id))
            record["deleted"].append(
                {"run_id": doomed.info.run_id, "sha256": hashlib.sha256(junk.read_bytes()).hexdigest()}
            )
        Path(out).write_text(json.dumps(record), encoding="utf-8")
    Path(out).write_text(json.dumps(record), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
