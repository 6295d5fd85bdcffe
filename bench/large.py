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


def sqlite_sizes(db: Path) -> dict:
    """Bytes of the database file (with its WAL) and of the audit log's table and indexes."""
    total = sum(p.stat().st_size for p in [db, Path(f"{db}-wal")] if p.exists())
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


def run_target(name: str, args, work: Path) -> dict:
    base = work / name
    base.mkdir()
    pg = None
    if name == "cairn-postgres":
        pg = PgCluster(base)
        pg.start()
        uri = pg.uri
    else:
        uri = f"sqlite:///{base}/cairn.db"
    port = free_port()
    argv = [str(args.cairn_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", uri,
            "--artifacts-destination", str(base / "artifacts")]
    result: dict = {"target": name}
    server = Server.start(name, argv, port, base / "server.log", base)
    try:
        fill = bench_json([str(args.bench_bin), "fill", "--url", server.url, "--experiments", str(args.experiments),
                           "--runs", str(args.runs), "--series", str(args.series),
                           "--series-steps", str(args.series_steps), "--concurrency", str(args.concurrency)])
        result["fill"] = {k: v for k, v in fill.items() if k not in ("experiment_ids", "series_run_ids")}
        queries = [str(args.bench_bin), "queries", "--url", server.url,
                   "--experiment-id", ",".join(fill["experiment_ids"]), "--repeat", str(args.repeat)]
        if fill["series_run_ids"]:
            queries += ["--series-run-id", fill["series_run_ids"][0]]
        result["queries"] = bench_json(queries)["results"]
    finally:
        server.stop()
    try:
        if pg is None:
            result["size"] = sqlite_sizes(base / "cairn.db")
        else:
            result["size"] = {"database_bytes": pg.database_bytes(), "audit_bytes": pg.table_bytes(AUDIT_TABLES)}
        points = args.runs * 10 + args.series * args.series_steps
        size = result["size"]
        size["bytes_per_run"] = round(size["database_bytes"] / max(args.runs, 1))
        size["audit_share"] = round(size["audit_bytes"] / max(size["database_bytes"], 1), 3)
        size["points"] = points
        started = time.monotonic()
        verify = subprocess.run([str(args.cairn_bin), "audit", "verify", "--json", "--backend-store-uri", uri],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        result["audit_verify"] = {"s": round(time.monotonic() - started, 3), "ok": verify.returncode == 0}
    finally:
        if pg is not None:
            pg.stop()
    return result


def markdown(results: list[dict], args) -> str:
    lines = [f"# Large store: {args.runs:,} runs in {args.experiments} experiments, "
             f"{args.series} series of {args.series_steps:,} steps", "",
             "| | " + " | ".join(r["target"] for r in results) + " |",
             "|---|" + "---|" * len(results)]

    def row(label: str, cell) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in results) + " |")

    row("fill: runs/s", lambda r: f"{r['fill']['runs_per_s']:,.0f}")
    row("fill: series points/s", lambda r: f"{r['fill']['series_points_per_s']:,.0f}")
    for i, q in enumerate(results[0]["queries"]):
        if "first_page_ms" in q:
            row(f"{q['query']}: first page (ms)", lambda r, i=i: f"{r['queries'][i]['first_page_ms']['median']:.1f}")
            row(f"{q['query']}: all {q['pages']} pages (ms)",
                lambda r, i=i: f"{r['queries'][i]['all_pages_ms']['median']:.1f}")
        elif "ms" in q:
            row(f"{q['query']} (ms)", lambda r, i=i: f"{r['queries'][i]['ms']['median']:.1f}")
    row("database (MB)", lambda r: f"{r['size']['database_bytes'] / 1e6:,.0f}")
    row("bytes per run", lambda r: f"{r['size']['bytes_per_run']:,}")
    row("audit log share", lambda r: f"{r['size']['audit_share']:.0%}")
    row("audit verify (s)", lambda r: f"{r['audit_verify']['s']:.1f}" + ("" if r["audit_verify"]["ok"] else " FAILED"))
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cairn-bin", type=Path, required=True)
    p.add_argument("--bench-bin", type=Path, required=True)
    p.add_argument("--targets", default="cairn-sqlite,cairn-postgres")
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
            if name == "cairn-postgres" and (reason := PgCluster.unavailable_reason()):
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
    return 0 if all(r["audit_verify"]["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
