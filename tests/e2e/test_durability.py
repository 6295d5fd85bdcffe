"""Cairn only: every write the server acknowledged survives `kill -9`, and the audit chain still
verifies afterwards."""

import threading
import time

import pytest
import requests
from mlflow.tracking import MlflowClient

from servers import cairn_cli

pytestmark = pytest.mark.cairn_only

WRITERS = 4
POINTS_PER_BATCH = 50
LOGGING_SECONDS = 2.5


class Writer(threading.Thread):
    """Logs batches to one run as fast as the server answers, recording what was acknowledged.

    A batch counts as acknowledged only when the server answered 200; anything in flight at the
    moment of the kill may or may not be stored, and is not checked.
    """

    def __init__(self, url: str, run_id: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url = url + "/api/2.0/mlflow/runs/log-batch"
        self.run_id = run_id
        self.stop_flag = stop
        self.acked_batches: list[int] = []
        self.session = requests.Session()

    def run(self) -> None:
        batch = 0
        while not self.stop_flag.is_set():
            first = batch * POINTS_PER_BATCH
            body = {
                "run_id": self.run_id,
                "metrics": [
                    {"key": "loss", "value": step / 7, "timestamp": 1_000_000 + step, "step": step}
                    for step in range(first, first + POINTS_PER_BATCH)
                ],
                "params": [{"key": f"batch{batch}", "value": str(batch)}],
                "tags": [{"key": "last_batch", "value": str(batch)}],
            }
            try:
                r = self.session.post(self.url, json=body, timeout=30)
            except requests.RequestException:
                return  # the server is gone
            if r.status_code != 200:
                return
            self.acked_batches.append(batch)
            batch += 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_acknowledged_writes_survive_kill_9(make_server, backend):
    server = make_server(backend, kind="cairn")
    client = MlflowClient(tracking_uri=server.url)
    exp_id = client.create_experiment("durability")
    run_ids = [client.create_run(exp_id, run_name=f"writer-{i}").info.run_id for i in range(WRITERS)]

    stop = threading.Event()
    writers = [Writer(server.url, run_id, stop) for run_id in run_ids]
    for w in writers:
        w.start()
    time.sleep(LOGGING_SECONDS)
    # Kill while the writers are still sending, so some requests are in flight.
    server.kill()
    stop.set()
    for w in writers:
        w.join(timeout=30)
    assert all(w.acked_batches for w in writers), "every writer should have had batches acknowledged"

    server.start()
    client = MlflowClient(tracking_uri=server.url)
    for w in writers:
        acked_steps = {
            step for b in w.acked_batches for step in range(b * POINTS_PER_BATCH, (b + 1) * POINTS_PER_BATCH)
        }
        stored = {m.step: m.value for m in client.get_metric_history(w.run_id, "loss")}
        missing = acked_steps - stored.keys()
        assert not missing, f"{len(missing)} acknowledged points lost, e.g. step {min(missing)}"
        assert all(stored[s] == s / 7 for s in acked_steps)
        params = client.get_run(w.run_id).data.params
        assert {f"batch{b}" for b in w.acked_batches} <= params.keys()
        assert int(client.get_run(w.run_id).data.tags["last_batch"]) >= w.acked_batches[-1]

    # The server keeps working on the recovered store.
    client.log_param(run_ids[0], "after_restart", "yes")
    assert client.get_run(run_ids[0]).data.params["after_restart"] == "yes"

    server.stop()
    result = cairn_cli("audit", "verify", "--backend-store-uri", server.backend_uri)
    assert result.returncode == 0, result.stdout + result.stderr
