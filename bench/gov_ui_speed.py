"""Speed of the governance views in headless Chromium (issue 17), on data made through the
public API of a fresh `cairn server`:

- lineage: a layered graph of N nodes and about 2N edges (ten ranks of datasets, each derived
  from two or more of the rank below, and one node on top that depends on the last rank); the
  explorer opens upstream of the top node, lays it out and draws it;
- registry: one registered model with V versions; the model page opens with every version;
- audit: the log after E events (`cairn-bench fill` creating runs through MLflow's REST API,
  three events a run: create, log-batch, update); the newest page, the page just above the
  oldest events (`before=`) and one in the middle, which cost the same when paging reads off the
  sequence number.

Each time is from navigation to the view's `performance.mark("cairn:<view>:ready")`, median of
--repeat cold browsers. The lineage mark also carries the layout's own time.

    /work/main/.venv-test/bin/python bench/gov_ui_speed.py --nodes 500 --versions 1000 --events 200000

`--views registry,audit` measures only those (and fills only what they need).

Prints one JSON object and writes it to --out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import Server, free_port  # noqa: E402
from ui_speed import browser, mark_time  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LAYERS = 10


def lineage_graph(url: str, nodes: int) -> tuple[str, int]:
    """Registers the graph; returns the top node and the number of edges."""
    s = requests.Session()
    per = max(1, nodes // LAYERS)
    names = [[f"dataset:bench-{layer}-{i}@1" for i in range(per)] for layer in range(LAYERS)]

    def node(ref: str) -> None:
        kind, key = ref.split(":", 1)
        s.put(f"{url}/api/cairn/v1/lineage/nodes/{kind}/{key}", json={"digest": hashlib.sha256(ref.encode()).hexdigest()}, timeout=60).raise_for_status()

    def edge(source: str, target: str) -> None:
        s.post(f"{url}/api/cairn/v1/lineage/edges", json={"source": source, "kind": "was_derived_from", "target": target}, timeout=60).raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(node, [n for layer in names for n in layer] + ["dataset:bench-top@1"]))
    pairs = []
    for layer in range(1, LAYERS):
        for i, source in enumerate(names[layer]):
            # Two parents each, plus a third for every other node: about 2.2 edges per node.
            for k in (0, 1, 2)[: 3 if i % 2 else 2]:
                pairs.append((source, names[layer - 1][(i * 7 + k * 13) % per]))
    pairs += [("dataset:bench-top@1", n) for n in names[-1]]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: edge(*p), pairs))
    return "dataset:bench-top@1", len(pairs)


def registry(url: str, versions: int) -> str:
    s = requests.Session()
    name = "bench-model"
    s.post(f"{url}/api/2.0/mlflow/registered-models/create", json={"name": name}, timeout=60).raise_for_status()

    def create(i: int) -> None:
        s.post(f"{url}/api/2.0/mlflow/model-versions/create", json={"name": name, "source": f"s3://bench/model-{i}"}, timeout=60).raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(versions)))
    return name


def timed(args, path: str, view: str) -> dict:
    d = browser(args.chromium, args.chromedriver, [])
    try:
        d.get(f"{args.url}/#{path}")
        ms = mark_time(d, view)
        detail = d.execute_script("const m = performance.getEntriesByName(arguments[0]); return m[0] && m[0].detail", f"cairn:{view}:ready")
        return {"ms": round(ms, 1), **(detail or {})}
    finally:
        d.quit()


def median(runs: list[dict]) -> dict:
    return {k: (round(statistics.median([r[k] for r in runs]), 1) if isinstance(runs[0][k], (int, float)) else runs[0][k]) for k in runs[0]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cairn-bin", default=str(ROOT / "target/debug/cairn"))
    p.add_argument("--bench-bin", default=str(ROOT / "target/debug/cairn-bench"))
    p.add_argument("--nodes", type=int, default=500)
    p.add_argument("--versions", type=int, default=1000)
    p.add_argument("--events", type=int, default=200000, help="audit events to reach, roughly (runs created by cairn-bench)")
    p.add_argument("--views", default="lineage,registry,audit", help="comma-separated: lineage, registry, audit")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    p.add_argument("--out", default=str(ROOT / "bench/results/gov_ui_speed.json"))
    args = p.parse_args()
    views = set(args.views.split(","))
    result: dict = {"nodes": args.nodes, "versions": args.versions, "cairn_bin": args.cairn_bin, "repeat": args.repeat, "views": sorted(views)}
    with tempfile.TemporaryDirectory(prefix="cairn-gov-speed.") as tmp:
        base = Path(tmp)
        port = free_port()
        argv = [args.cairn_bin, "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", f"sqlite:///{base}/cairn.db", "--data-dir", str(base / "data")]
        server = Server.start("cairn", argv, port, base / "server.log", cwd=base)
        args.url = server.url
        try:
            started = time.perf_counter()
            if "lineage" in views:
                top, edges = lineage_graph(server.url, args.nodes)
                result["edges"] = edges
            if "registry" in views:
                name = registry(server.url, args.versions)
            if "audit" in views and args.events:
                # Each run `fill` makes writes three events (create, log-batch, update); the
                # smallest run it allows (two params, two metrics, one tag) keeps the batch short.
                fill = [args.bench_bin, "fill", "--url", server.url, "--experiments", "10", "--runs", str(max(1, args.events // 3))]
                fill += ["--params", "2", "--metrics", "2", "--tags", "1", "--series", "0", "--concurrency", "4", "--prefix", "audit"]
                filled = time.perf_counter()
                subprocess.run(fill, check=True, capture_output=True)
                result["audit_fill_s"] = round(time.perf_counter() - filled, 1)
            last = requests.get(f"{server.url}/api/cairn/v1/audit/events", params={"order": "desc", "limit": 1}, timeout=60).json()["events"][0]["seq"]
            result.update({"audit_events": last, "populate_s": round(time.perf_counter() - started, 1)})
            if "lineage" in views:
                result["lineage"] = median([timed(args, f"/lineage?node={top}&up=10&down=0", "lineage") for _ in range(args.repeat)])
            if "registry" in views:
                result["registry_model"] = median([timed(args, f"/models/{name}", "model") for _ in range(args.repeat)])
            if "audit" in views:
                result["audit_newest"] = median([timed(args, "/audit", "audit") for _ in range(args.repeat)])
                result["audit_middle"] = median([timed(args, f"/audit?before={last // 2}", "audit") for _ in range(args.repeat)])
                result["audit_oldest"] = median([timed(args, "/audit?before=60", "audit") for _ in range(args.repeat)])
        finally:
            server.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
