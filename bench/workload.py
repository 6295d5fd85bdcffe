"""The benchmark workload, driven through the real `mlflow` Python client.

Run once per server: `python workload.py --tracking-uri URI --scale smoke|full`. Each scenario
prints one JSON line on stdout with its wall time, the client's own CPU time (the floor no server
can beat through this client) and what the harness needs to check correctness across servers.
The data is generated from fixed seeds, so every server receives exactly the same workload.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

# The same filter and ordering the Rust load generator uses by default.
SEARCH_FILTER = "metrics.acc > 0.49 AND params.optimizer = 'adam'"
SEARCH_ORDER_BY = ["metrics.acc DESC"]
SEARCH_PAGE_SIZE = 1000
BATCH_SIZE = 1000


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is at one scale."""

    log_metric_calls: int
    batch_runs: int
    batch_keys: int
    batch_steps: int
    search_runs: int
    history_steps: int
    procs: int
    proc_batches: int
    artifact_mib: int


SCALES = {
    # The sizes: 2,000 calls; 10 runs x 10 keys x 10,000 steps = 1M points; 5,000 runs;
    # 100,000 steps; 8 processes x 40 batches x 1,000 = 320,000 points; a 1 GiB artifact.
    "full": Sizes(2000, 10, 10, 10_000, 5000, 100_000, 8, 40, 1024),
    # Small enough for CI, yet the history still spans two of the client's 25,000-point pages
    # (the search scenario shrinks its page size at this scale so that it pages too).
    "smoke": Sizes(30, 2, 10, 300, 60, 26_000, 4, 2, 8),
}


def now_ms() -> int:
    return int(time.time() * 1000)


# The client prints progress lines ("View run ...") on stdout; results go to the real stdout and
# everything else is sent to stderr, so the harness can read stdout as pure JSON lines.
RESULTS = sys.stdout


def emit(result: dict) -> None:
    print(json.dumps(result), file=RESULTS, flush=True)


class Timer:
    """Wall and process-CPU time of a block."""

    def __enter__(self) -> Timer:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def new_experiment(client: MlflowClient, scenario: str) -> str:
    return client.create_experiment(f"bench-{scenario}-{now_ms()}-{random.random():.6f}")


def batch_metrics(rng: random.Random, keys: int, first_step: int, steps: int, base_ms: int) -> list[Metric]:
    return [
        Metric(f"m{k}", rng.random(), base_ms + s, s)
        for k in range(keys)
        for s in range(first_step, first_step + steps)
    ]


def scenario_log_metric(client: MlflowClient, sizes: Sizes) -> dict:
    run_id = client.create_run(new_experiment(client, "log-metric")).info.run_id
    rng = random.Random(1)
    with Timer() as t:
        for step in range(sizes.log_metric_calls):
            client.log_metric(run_id, "loss", rng.random(), step=step)
    got = len(client.get_metric_history(run_id, "loss"))
    return {
        "scenario": "log_metric",
        "count": sizes.log_metric_calls,
        "points": sizes.log_metric_calls,
        "wall_s": t.wall,
        "client_cpu_s": t.cpu,
        "history_len": got,
        "verified": got == sizes.log_metric_calls,
    }


def scenario_log_batch(client: MlflowClient, sizes: Sizes) -> dict:
    experiment = new_experiment(client, "log-batch")
    runs = [client.create_run(experiment).info.run_id for _ in range(sizes.batch_runs)]
    steps_per_batch = BATCH_SIZE // sizes.batch_keys
    rng = random.Random(2)
    base = now_ms()
    points = 0
    with Timer() as t:
        # Runs take turns, as several training jobs would.
        for first in range(0, sizes.batch_steps, steps_per_batch):
            steps = min(steps_per_batch, sizes.batch_steps - first)
            for run_id in runs:
                metrics = batch_metrics(rng, sizes.batch_keys, first, steps, base)
                client.log_batch(run_id, metrics=metrics)
                points += len(metrics)
    lengths = [len(client.get_metric_history(r, "m0")) for r in runs]
    return {
        "scenario": "log_batch",
        "count": points,
        "points": points,
        "wall_s": t.wall,
        "client_cpu_s": t.cpu,
        "verified": all(n == sizes.batch_steps for n in lengths),
    }


def search_run_data(i: int, rng: random.Random) -> tuple[list[Param], list[Metric], float]:
    params = [
        Param("optimizer", rng.choice(["adam", "sgd"])),
        Param("lr", rng.choice(["0.1", "0.01", "0.001", "0.0001"])),
        Param("batch_size", rng.choice(["16", "32", "64", "128"])),
        Param("layers", rng.choice(["2", "4", "8"])),
        Param("dropout", rng.choice(["0.0", "0.1", "0.3"])),
        Param("activation", rng.choice(["relu", "gelu", "tanh"])),
        Param("weight_decay", rng.choice(["0", "1e-4", "1e-2"])),
        Param("warmup", rng.choice(["0", "100", "1000"])),
        Param("scheduler", rng.choice(["cosine", "linear", "none"])),
        Param("seed", str(i)),
    ]
    acc = rng.random()
    ts = now_ms()
    metrics = [Metric("acc", acc, ts, 0), Metric("loss", rng.random() * 3, ts, 0), Metric("f1", rng.random(), ts, 0)]
    return params, metrics, acc


def scenario_runs_and_search(client: MlflowClient, sizes: Sizes) -> list[dict]:
    experiment = new_experiment(client, "search")
    rng = random.Random(3)
    expected: list[tuple[float, str]] = []
    with Timer() as create:
        for i in range(sizes.search_runs):
            name = f"run-{i:05d}"
            params, metrics, acc = search_run_data(i, rng)
            run_id = client.create_run(experiment, run_name=name).info.run_id
            client.log_batch(run_id, metrics=metrics, params=params)
            client.set_terminated(run_id)
            if params[0].value == "adam" and acc > 0.49:
                expected.append((acc, name))
    expected_names = [name for _, name in sorted(expected, reverse=True)]

    # Smoke scale has too few hits for two pages of 1,000: shrink the page so paging is exercised.
    page_size = SEARCH_PAGE_SIZE if sizes.search_runs >= 2000 else 10
    names: list[str] = []
    pages = 0
    with Timer() as search:
        token = None
        while True:
            page = client.search_runs(
                [experiment], SEARCH_FILTER, order_by=SEARCH_ORDER_BY, max_results=page_size, page_token=token
            )
            names.extend(r.info.run_name for r in page)
            pages += 1
            token = page.token
            if not token:
                break
    return [
        {
            "scenario": "create_runs",
            "count": sizes.search_runs,
            "points": 3 * sizes.search_runs,
            "wall_s": create.wall,
            "client_cpu_s": create.cpu,
            "experiment_id": experiment,
            "verified": True,
        },
        {
            "scenario": "search",
            "count": len(names),
            "points": 0,
            "pages": pages,
            "wall_s": search.wall,
            "client_cpu_s": search.cpu,
            "experiment_id": experiment,
            "run_names": names,
            "verified": names == expected_names,
        },
    ]


def scenario_history(client: MlflowClient, sizes: Sizes) -> dict:
    run_id = client.create_run(new_experiment(client, "history")).info.run_id
    rng = random.Random(4)
    base = now_ms()
    with Timer() as setup:
        for first in range(0, sizes.history_steps, BATCH_SIZE):
            steps = min(BATCH_SIZE, sizes.history_steps - first)
            client.log_batch(run_id, metrics=[Metric("loss", rng.random(), base + s, s) for s in range(first, first + steps)])
    with Timer() as t:
        history = client.get_metric_history(run_id, "loss")
    steps_back = sorted(m.step for m in history)
    return {
        "scenario": "history",
        "count": len(history),
        "points": sizes.history_steps,
        "wall_s": t.wall,
        "client_cpu_s": t.cpu,
        "setup_wall_s": setup.wall,
        "run_id": run_id,
        "key": "loss",
        "verified": steps_back == list(range(sizes.history_steps)),
    }


_BARRIER = None


def _init_worker(barrier) -> None:
    global _BARRIER
    _BARRIER = barrier


def _concurrent_worker(args: tuple[str, str, int, int, int]) -> dict:
    """One of the client processes of the concurrency scenario: its own client and run."""
    uri, experiment, index, batches, keys = args
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(experiment, run_name=f"proc-{index}").info.run_id
    rng = random.Random(100 + index)
    steps = BATCH_SIZE // keys
    base = now_ms()
    errors = 0
    # Every process is up, imported and has its run before any starts logging.
    _BARRIER.wait()
    start, cpu0 = time.time(), time.process_time()
    for b in range(batches):
        try:
            client.log_batch(run_id, metrics=batch_metrics(rng, keys, b * steps, steps, base))
        except Exception as e:  # noqa: BLE001 - an error is counted, as the issue asks, not fatal
            errors += 1
            print(f"concurrent worker {index}: {e}", file=sys.stderr)
    return {"run_id": run_id, "cpu": time.process_time() - cpu0, "errors": errors, "start": start, "end": time.time()}


def scenario_concurrent(client: MlflowClient, uri: str, sizes: Sizes) -> dict:
    experiment = new_experiment(client, "concurrent")
    jobs = [(uri, experiment, i, sizes.proc_batches, 10) for i in range(sizes.procs)]
    # Fork is not safe with the client's threads, so spawn.
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(sizes.procs)
    with ctx.Pool(sizes.procs, initializer=_init_worker, initargs=(barrier,)) as pool:
        # One job per process (chunksize 1), or the barrier would never fill.
        results = pool.map(_concurrent_worker, jobs, chunksize=1)
    # The clock runs from the first process starting to log to the last one finishing.
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    points = sizes.procs * sizes.proc_batches * BATCH_SIZE
    errors = sum(r["errors"] for r in results)
    expected_len = sizes.proc_batches * (BATCH_SIZE // 10)
    lengths = [len(client.get_metric_history(r["run_id"], "m0")) for r in results]
    return {
        "scenario": "concurrent",
        "count": points,
        "points": points,
        "wall_s": wall,
        # The processes run side by side on a shared machine: their summed CPU is the floor only
        # when divided by the cores they can use, which the report does.
        "client_cpu_s": sum(r["cpu"] for r in results),
        "procs": sizes.procs,
        "errors": errors,
        "verified": errors == 0 and all(n == expected_len for n in lengths),
    }


def artifact_file(folder: Path, mib: int) -> tuple[Path, str]:
    """A file of `mib` MiB of seeded random bytes and its SHA-256, made once per scratch folder so
    that every server receives the same bytes (random, so no layer can compress them away)."""
    path = folder / f"artifact-{mib}MiB.bin"
    digest_path = folder / f"artifact-{mib}MiB.sha256"
    if path.exists() and digest_path.exists():
        return path, digest_path.read_text().strip()
    rng = random.Random(5)
    sha = hashlib.sha256()
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as f:
        for _ in range(mib):
            chunk = rng.randbytes(1 << 20)
            sha.update(chunk)
            f.write(chunk)
    partial.rename(path)
    digest_path.write_text(sha.hexdigest())
    return path, sha.hexdigest()


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            sha.update(chunk)
    return sha.hexdigest()


def scenario_artifacts(client: MlflowClient, sizes: Sizes, scratch: Path) -> list[dict]:
    """Uploads one large file through the client (a streamed PUT to the server's proxied artifact
    store) and downloads it again; the download is checked against the upload's digest."""
    source, digest = artifact_file(scratch, sizes.artifact_mib)
    size = source.stat().st_size
    run_id = client.create_run(new_experiment(client, "artifacts")).info.run_id
    with Timer() as up:
        client.log_artifact(run_id, str(source))
    with tempfile.TemporaryDirectory(dir=scratch) as dst:
        with Timer() as down:
            local = Path(client.download_artifacts(run_id, source.name, dst))
        # Hashing is the check, not part of the transfer: it stays outside the timer.
        same = local.stat().st_size == size and file_sha256(local) == digest
    mib = size / (1 << 20)
    return [
        {"scenario": "artifact_upload", "count": mib, "bytes": size, "points": 0,
         "wall_s": up.wall, "client_cpu_s": up.cpu, "verified": True},
        {"scenario": "artifact_download", "count": mib, "bytes": size, "points": 0,
         "wall_s": down.wall, "client_cpu_s": down.cpu, "sha256": digest, "verified": same},
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--scale", choices=sorted(SCALES), default="smoke")
    parser.add_argument("--scenarios", choices=["tracking", "artifacts"], default="tracking",
                        help="tracking: scenarios 1-4 and 6; artifacts: scenario 5 alone, so that the "
                             "harness can take the server's peak memory during it")
    parser.add_argument("--scratch", default=tempfile.gettempdir(),
                        help="folder for the artifact scenario's source file and downloads")
    args = parser.parse_args()
    sizes = SCALES[args.scale]
    sys.stdout = sys.stderr
    client = MlflowClient(tracking_uri=args.tracking_uri)
    if args.scenarios == "artifacts":
        for result in scenario_artifacts(client, sizes, Path(args.scratch)):
            emit(result)
        return 0
    emit(scenario_log_metric(client, sizes))
    emit(scenario_log_batch(client, sizes))
    for result in scenario_runs_and_search(client, sizes):
        emit(result)
    emit(scenario_history(client, sizes))
    emit(scenario_concurrent(client, args.tracking_uri, sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
