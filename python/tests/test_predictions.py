"""`PredictionLogger` under concurrency, its overhead in the calling thread, and its spill file
when the server is away."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

import cairn
from conftest import Server


@pytest.fixture()
def deployment(tracking: str) -> str:
    """A deployment serving version 1 of a model trained by a run."""
    name = f"churn-{time.time_ns()}"
    with mlflow.start_run() as run:
        mlflow.log_metric("auc", 0.9)
    registry = MlflowClient()
    registry.create_registered_model(name)
    registry.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    cairn.Client(tracking).deploy(f"{name}-api", f"{name}/1")
    return f"{name}-api"


def test_concurrent_threads_deliver_every_prediction_once(tracking: str, deployment: str, tmp_path: Path) -> None:
    logger = cairn.PredictionLogger(
        deployment, client=cairn.Client(tracking), batch_size=2_000, flush_interval_ms=50, spill_path=tmp_path / "s.jsonl"
    )
    threads, per_thread = 8, 2_500

    def serve(t: int) -> None:
        for i in range(per_thread):
            logger.log(f"p-{t}-{i}", f"in-{t}-{i}")

    workers = [threading.Thread(target=serve, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    logger.close()
    assert logger.stats.delivered == threads * per_thread
    assert logger.stats.spilled == 0 and logger.stats.rejected == 0
    trace = cairn.Client(tracking).trace("p-7-2499")
    assert trace["prediction"]["input_digest"] == "in-7-2499"


def test_the_calling_thread_pays_under_10_microseconds(tmp_path: Path) -> None:
    # A logger whose server is unreachable: only the calling thread's cost is measured.
    logger = cairn.PredictionLogger(
        "bench", client=cairn.Client("http://127.0.0.1:9", max_retries=0), flush_interval_ms=60_000,
        spill_path=tmp_path / "s.jsonl",
    )
    n = 100_000
    start = time.perf_counter()
    for i in range(n):
        logger.log("p", "d")
    per_call = (time.perf_counter() - start) / n
    print(f"PredictionLogger.log: {per_call * 1e6:.2f} µs per call")
    assert per_call < 10e-6
    logger._queue.clear()


def test_an_unreachable_server_spills_to_disk_and_a_later_logger_delivers(
    server: Server, deployment: str, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    down = cairn.PredictionLogger(
        deployment, client=cairn.Client("http://127.0.0.1:9", max_retries=0), max_retries=1,
        flush_interval_ms=20, spill_path=spill,
    )
    for i in range(300):
        down.log(f"s-{i}", f"d-{i}")
    down.close()
    assert down.stats.delivered == 0 and down.stats.spilled == 300
    assert len(spill.read_text().splitlines()) == 300

    up = cairn.PredictionLogger(deployment, client=cairn.Client(server.url), flush_interval_ms=20, spill_path=spill)
    up.log("s-300", "d-300")
    up.close()
    assert up.stats.delivered == 301
    assert not spill.exists()
    assert cairn.Client(server.url).trace("s-0")["prediction"]["input_digest"] == "d-0"


def test_a_full_queue_spills_instead_of_dropping(tmp_path: Path) -> None:
    spill = tmp_path / "s.jsonl"
    logger = cairn.PredictionLogger(
        "x", client=cairn.Client("http://127.0.0.1:9", max_retries=0), max_queue=10,
        flush_interval_ms=60_000, spill_path=spill,
    )
    for i in range(25):
        logger.log(f"q-{i}", "d")
    assert [json.loads(line)["prediction_id"] for line in spill.read_text().splitlines()] == [
        f"q-{i}" for i in range(10, 25)
    ]
    logger._queue.clear()
