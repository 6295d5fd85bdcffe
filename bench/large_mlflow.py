"""Loads MLflow's own SQLite store with the runs `cairn-bench fill` makes, through MLflow's store
API (`SqlAlchemyStore`, no HTTP in between: the fastest way MLflow can be filled), so that
bench/large.py can run the same queries against `mlflow server` side by side with Cairn.

The data mirrors crates/cairn-bench/src/large.rs run for run (the same SplitMix64 hash decides
every value), so both servers hold the same runs and the same filters match the same number.

    python bench/large_mlflow.py --db /tmp/m/mlflow.db --artifacts /tmp/m/artifacts --runs 20000
"""

from __future__ import annotations

import argparse
import json
import sys
import time

MASK = (1 << 64) - 1
TEAMS = ["vision", "speech", "ranking", "forecast", "nlp"]
SERIES_KEY = "loss"


def mix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def unit(parts: list[int]) -> float:
    h = 0
    for p in parts:
        h = mix(h ^ p)
    return (h >> 11) / float(1 << 53)


def large_run(i: int, params: int, metrics: int, tags: int):
    ps = []
    for k in range(params):
        if k == 0:
            value = ["adam", "sgd"][mix(i ^ 0xA0) % 2]
        elif k == 1:
            value = str(i)
        else:
            value = f"v{mix(i ^ (k << 40)) % 8}"
        ps.append((f"p{k:02}", value))
    ms = []
    for k in range(metrics):
        key = "acc" if k == 0 else SERIES_KEY if k == 1 else f"m{k:02}"
        ms.append((key, unit([i, k])))
    ts = []
    for k in range(tags):
        if k == 0:
            ts.append(("team", TEAMS[mix(i ^ 0x7E) % len(TEAMS)]))
        else:
            ts.append((f"t{k:02}", f"tag-{mix(i ^ (k << 48)) % 16}"))
    return ps, ms, ts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", required=True)
    p.add_argument("--artifacts", required=True)
    p.add_argument("--experiments", type=int, default=100)
    p.add_argument("--runs", type=int, default=20_000)
    p.add_argument("--params", type=int, default=20)
    p.add_argument("--metrics", type=int, default=10)
    p.add_argument("--tags", type=int, default=10)
    p.add_argument("--series", type=int, default=1)
    p.add_argument("--series-steps", type=int, default=100_000)
    p.add_argument("--prefix", default="large")
    args = p.parse_args()

    from mlflow.entities import Metric, Param, RunStatus, RunTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{args.db}", args.artifacts)
    experiment_ids = [store.create_experiment(f"{args.prefix}-{k}") for k in range(args.experiments)]
    started = time.monotonic()
    series_runs = []
    now = int(time.time() * 1000)
    for i in range(args.runs):
        experiment = experiment_ids[i % len(experiment_ids)]
        run = store.create_run(experiment, "bench", now, [], f"run-{i}")
        run_id = run.info.run_id
        ps, ms, ts = large_run(i, args.params, args.metrics, args.tags)
        store.log_batch(run_id, [Metric(k, v, now, 0) for k, v in ms], [Param(k, v) for k, v in ps],
                        [RunTag(k, v) for k, v in ts])
        store.update_run_info(run_id, RunStatus.FINISHED, now, f"run-{i}")
        if i < args.series:
            series_runs.append(run_id)
    runs_s = time.monotonic() - started
    started = time.monotonic()
    for run_id in series_runs:
        for first in range(1, args.series_steps + 1, 1000):
            last = min(first + 999, args.series_steps)
            points = [Metric(SERIES_KEY, 50.0 if s % 100_000 == 0 else 1.0 / (1.0 + s / 1e4) + unit([s]) * 0.01,
                             1_700_000_000_000 + s, s) for s in range(first, last + 1)]
            store.log_batch(run_id, points, [], [])
    series_s = time.monotonic() - started
    print(json.dumps({"scenario": "fill", "experiment_ids": experiment_ids, "series_run_ids": series_runs,
                      "runs": args.runs, "runs_s": round(runs_s, 3),
                      "runs_per_s": round(args.runs / max(runs_s, 1e-9), 3),
                      "series_steps": args.series_steps, "series_s": round(series_s, 3),
                      "series_points_per_s": round(len(series_runs) * args.series_steps / max(series_s, 1e-9), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
