"""Large stores: fill Cairn on SQLite and on PostgreSQL with the same 100,000 runs, time the
queries a user makes on such a store, and measure what the store costs on disk.

    bench/large.py --cairn-bin target/release/cairn --bench-bin target/release/cairn-bench
    bench/large.py ... --runs 2000 --series-steps 20000      # a quick look

For each target it starts a fresh `cairn server`, runs `cairn-bench fill` (experiments, runs with
params/metrics/tags in one log-batch each, long `loss` series), `cairn-bench queries` (each kind
of filter ordered by a metric, first page and all pages, across experiments, experiment listing,
a long history whole and downsampled), stops the server, measures the database and the audit
log's share of it, and times `cairn audit verify`. Results go to
`bench/results/<UTC timestamp>-large.{json,md}`; see bench/README.md ("Large stores").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from servers import PgCluster, Server, free_port

BENCH = Path(__file__).resolve().parent
AUDIT_TABLES = ("audit_events",)


def bench_json(argv: list[str]) -> dict:
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def sqlite_sizes(db: Path, audit: bool = True) -> dict:
    """Bytes of the database file (with its WAL) and of the audit log's table and indexes."""
    total = sum(p.stat().st_size for p in [db, Path(f"{db}-wal")] if p.exists())
    if not audit:
        return {"database_bytes": total}
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name IN "
                "(SELECT name FROM sqlite_schema WHERE tbl_name = 'audit_events')"
            ).fetchone()
            audit = int(rows[0] or 0)
        except sqlite3.OperationalError:
            audit = -1  # this sqlite3 module was built without dbstat
    return {"database_bytes": total, "audit_bytes": audit}


def run_target(spec: str, args, work: Path) -> dict:
    """Runs one target, `name` or `name@runs` (the same store at another size)."""
    name, _, size = spec.partition("@")
    runs = int(size) if size else args.runs
    base = work / spec.replace("@", "-")
    base.mkdir()
    pg = None
    if name == "cairn-postgres":
        pg = PgCluster(base)
        pg.start()
        uri = pg.uri
    else:
        uri = f"sqlite:///{base}/{'mlflow' if name == 'mlflow-sqlite' else 'cairn'}.db"
    port = free_port()
    result: dict = {"target": spec, "runs": runs}
    fill_argv = ["--experiments", str(args.experiments), "--runs", str(runs), "--series", str(args.series),
                 "--series-steps", str(args.series_steps)]
    if name == "mlflow-sqlite":
        # MLflow is filled through its own store API (no HTTP), the fastest way it can be loaded.
        fill = bench_json([sys.executable, str(BENCH / "large_mlflow.py"), "--db", str(base / "mlflow.db"),
                           "--artifacts", str(base / "artifacts"), *fill_argv])
        argv = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                "--backend-store-uri", uri, "--artifacts-destination", str(base / "artifacts"), "--workers", "1"]
        server = Server.start(spec, argv, port, base / "server.log", base)
    else:
        argv = [str(args.cairn_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", uri,
                "--artifacts-destination", str(base / "artifacts")]
        server = Server.start(spec, argv, port, base / "server.log", base)
    try:
        if name != "mlflow-sqlite":
            fill = bench_json([str(args.bench_bin), "fill", "--url", server.url, *fill_argv,
                               "--concurrency", str(args.concurrency)])
        result["fill"] = {k: v for k, v in fill.items() if k not in ("experiment_ids", "series_run_ids")}
        queries = [str(args.bench_bin), "queries", "--url", server.url,
                   "--experiment-id", ",".join(fill["experiment_ids"]), "--repeat", str(args.repeat)]
        if fill["series_run_ids"]:
            queries += ["--series-run-id", fill["series_run_ids"][0]]
        result["queries"] = bench_json(queries)["results"]
    finally:
        server.stop()
    if name == "mlflow-sqlite":
        result["size"] = sqlite_sizes(base / "mlflow.db", audit=False)
        result["size"]["bytes_per_run"] = round(result["size"]["database_bytes"] / max(runs, 1))
        return result
    try:
        if pg is None:
            result["size"] = sqlite_sizes(base / "cairn.db")
        else:
            result["size"] = {"database_bytes": pg.database_bytes(), "audit_bytes": pg.table_bytes(AUDIT_TABLES)}
        size = result["size"]
        size["bytes_per_run"] = round(size["database_bytes"] / max(runs, 1))
        size["audit_share"] = round(size["audit_bytes"] / max(size["database_bytes"], 1), 3)
        started = time.monotonic()
        verify = subprocess.run([str(args.cairn_bin), "audit", "verify", "--json", "--backend-store-uri", uri],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        result["audit_verify"] = {"s": round(time.monotonic() - started, 3), "ok": verify.returncode == 0}
    finally:
        if pg is not None:
            pg.stop()
    return result


def markdown(results: list[dict], args) -> str:
    lines = [f"# Large store: runs in {args.experiments} experiments (20 params, 10 metrics, 10 tags each), "
             f"{args.series} series of {args.series_steps:,} steps", "",
             "| | " + " | ".join(f"{r['target'].split('@')[0]}, {r['runs']:,} runs" for r in results) + " |",
             "|---|" + "---|" * len(results)]

    def row(label: str, cell) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in results) + " |")

    def query(r: dict, name: str, field: str) -> str:
        found = [q for q in r["queries"] if q["query"] == name and field in q]
        return f"{found[0][field]['median']:.1f}" if found else "-"

    row("fill: runs/s", lambda r: f"{r['fill']['runs_per_s']:,.0f}")
    row("fill: series points/s", lambda r: f"{r['fill']['series_points_per_s']:,.0f}")
    for q in results[0]["queries"]:
        if "first_page_ms" in q:
            row(f"{q['query']}: first page (ms)", lambda r, n=q["query"]: query(r, n, "first_page_ms"))
            row(f"{q['query']}: all pages (ms)", lambda r, n=q["query"]: query(r, n, "all_pages_ms"))
        elif "ms" in q:
            row(f"{q['query']} (ms)", lambda r, n=q["query"]: query(r, n, "ms"))
    row("database (MB)", lambda r: f"{r['size']['database_bytes'] / 1e6:,.0f}")
    row("bytes per run", lambda r: f"{r['size']['bytes_per_run']:,}")
    row("audit log share", lambda r: f"{r['size']['audit_share']:.0%}" if "audit_share" in r["size"] else "-")
    row("audit verify (s)", lambda r: (f"{r['audit_verify']['s']:.1f}" + ("" if r["audit_verify"]["ok"] else " FAILED"))
        if "audit_verify" in r else "-")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cairn-bin", type=Path, required=True)
    p.add_argument("--bench-bin", type=Path, required=True)
    p.add_argument("--targets", default="cairn-sqlite,cairn-postgres,cairn-sqlite@5000,mlflow-sqlite@5000",
                   help="comma-separated; name@runs runs that target at another size")
    p.add_argument("--experiments", type=int, default=100)
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--series", type=int, default=2)
    p.add_argument("--series-steps", type=int, default=1_000_000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = p.parse_args()
    # The servers run in their own scratch folders, so the binaries must not be relative.
    args.cairn_bin, args.bench_bin = args.cairn_bin.resolve(), args.bench_bin.resolve()
    results = []
    with tempfile.TemporaryDirectory(prefix="cairn-large-") as tmp:
        # The cluster runs as `postgres`, which must be able to enter the folder.
        os.chmod(tmp, 0o755)
        for name in args.targets.split(","):
            if name.startswith("cairn-postgres") and (reason := PgCluster.unavailable_reason()):
                print(f"[large] skipping {name}: {reason}", file=sys.stderr)
                continue
            print(f"[large] {name}", file=sys.stderr)
            results.append(run_target(name, args, Path(tmp)))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    args.results_dir.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "load_before": os.getloadavg(),
            "runs": args.runs, "experiments": args.experiments, "series": args.series,
            "series_steps": args.series_steps, "concurrency": args.concurrency}
    (args.results_dir / f"{stamp}-large.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    table = markdown(results, args)
    (args.results_dir / f"{stamp}-large.md").write_text(table)
    print(table)
    problems = disagreements(results)
    for problem in problems:
        print(f"[large] {problem}", file=sys.stderr)
    ok = all(r.get("audit_verify", {"ok": True})["ok"] for r in results) and not problems
    return 0 if ok else 1


def disagreements(results: list[dict]) -> list[str]:
    """Stores of the same size hold the same runs, so every search must find as many."""
    problems = []
    by_size: dict[int, list[dict]] = {}
    for r in results:
        by_size.setdefault(r["runs"], []).append(r)
    for group in by_size.values():
        for other in group[1:]:
            for a, b in zip(group[0]["queries"], other["queries"]):
                if "hits" in a and a.get("hits") != b.get("hits"):
                    problems.append(f"{a['query']}: {group[0]['target']} found {a['hits']}, "
                                    f"{other['target']} found {b.get('hits')}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
