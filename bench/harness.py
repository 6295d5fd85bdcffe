"""Runs the benchmark: the same workload against MLflow and Cairn, side by side, in one run.

Called by `bench/run.sh` (which prepares the venv and the release binaries); see bench/README.md.
For each target it starts the server, runs `workload.py` (the real `mlflow` client) and the Rust
load generator `cairn-bench` against it, watches the server's memory, stops it and measures its
database. Then it prints the table and writes `bench/results/<timestamp>-<scale>.{json,md}`.
At `--scale smoke` it also checks that every server returned the same, correct answers, and exits
non-zero if not; it never judges speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import report
import workload as client_workload
from servers import MemoryMonitor, PgCluster, Server, free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MIGRATION = ROOT / "crates/cairn-store/migrations/sqlite/0001_init.sql"


@dataclass(frozen=True)
class ServerSide:
    """Sizes of the Rust load generator's scenarios."""

    ingest_writers: int
    ingest_points: int
    repeat: int
    raw_rows: int
    # Cairn only (MLflow has no lineage): predictions logged, length of the dataset chain.
    predictions: int
    lineage_depth: int


SERVER_SIDE = {
    "full": ServerSide(8, 400_000, 3, 1_000_000, 200_000, 50),
    "smoke": ServerSide(8, 16_000, 1, 100_000, 4_000, 5),
}

# What each target is: how to start it. MLflow configurations are named after how they serve.
MLFLOW_CONFIGS = {
    "mlflow-workers1": ["--workers", "1"],
    "mlflow-gunicorn4": ["--workers", "4", "--gunicorn-opts", "--timeout 600"],
}
CAIRN_TARGETS = ["cairn-sqlite", "cairn-postgres"]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


class Run:
    """One benchmark run: shared settings and the results gathered so far."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.scale = args.scale
        self.sizes = SERVER_SIDE[args.scale]
        self.python = Path(sys.executable)
        self.cairn = Path(args.cairn_bin)
        self.loadgen = Path(args.bench_bin)
        self.work = Path(tempfile.mkdtemp(prefix="cairn-bench-"))
        # The `postgres` user must be able to reach its cluster folder inside this one.
        os.chmod(self.work, 0o755)
        self.results: dict = {"targets": {}, "notes": []}

    def workload(self, name: str, url: str, scenarios: str = "tracking") -> list[dict]:
        log(f"{name}: workload.py ({scenarios}) through the mlflow client")
        with open(self.work / f"{name}-workload.log", "ab") as err:
            out = subprocess.run(
                [str(self.python), str(BENCH / "workload.py"), "--tracking-uri", url, "--scale", self.scale,
                 "--scenarios", scenarios, "--scratch", str(self.work)],
                stdout=subprocess.PIPE, stderr=err, check=False, timeout=7200,
            )
        results = json_lines(out.stdout.decode())
        if out.returncode != 0:
            raise RuntimeError(f"workload.py failed ({out.returncode}); see {self.work / f'{name}-workload.log'}")
        return results

    def loadgen_run(self, name: str, argv: list[str]) -> dict:
        out = subprocess.run([str(self.loadgen), *argv], capture_output=True, text=True, check=False, timeout=7200)
        if out.returncode != 0:
            return {"bench": argv[0], "failed": out.stderr.strip()[-2000:]}
        lines = json_lines(out.stdout)
        return lines[-1] if lines else {"bench": argv[0], "failed": "no output"}

    def server_side(self, name: str, url: str, workload: list[dict]) -> dict:
        """The Rust load generator against the same server, reusing the workload's search
        experiment and history run so both tools measure the same data."""
        by = {r["scenario"]: r for r in workload}
        s = self.sizes
        log(f"{name}: cairn-bench ingest/search/history")
        out = {
            "ingest": self.loadgen_run(name, ["ingest", "--url", url, "--writers", str(s.ingest_writers),
                                              "--points", str(s.ingest_points), "--verify"]),
            "search": self.loadgen_run(name, ["search", "--url", url, "--experiment-id", by["search"]["experiment_id"],
                                              "--repeat", str(s.repeat), "--max-results", "1000"]),
            "history": self.loadgen_run(name, ["history", "--url", url, "--run-id", by["history"]["run_id"],
                                               "--key", "loss", "--repeat", str(s.repeat)]),
        }
        if name in CAIRN_TARGETS:
            log(f"{name}: cairn-bench lineage")
            out["lineage"] = self.loadgen_run(name, ["lineage", "--url", url, "--predictions", str(s.predictions),
                                                     "--depth", str(s.lineage_depth), "--repeat", str(10 * s.repeat)])
        return out

    def measure(self, name: str, server: Server, db_bytes: Callable[[], int],
                extra_roots: list[int] | None = None) -> dict:
        # The schema and a fresh PostgreSQL database take megabytes before any data arrives; they
        # are measured here and left out of the bytes-per-point figure.
        result: dict = {"url": server.url, "db_bytes_at_start": db_bytes()}
        monitor = MemoryMonitor([server.proc.pid]).start()
        other = MemoryMonitor(extra_roots).start() if extra_roots else None
        started = time.perf_counter()
        try:
            result["workload"] = self.workload(name, server.url)
            # The artifact scenario runs on its own so that its memory peak can be told apart.
            monitor.begin_window()
            result["workload"] += self.workload(name, server.url, "artifacts")
            result["artifact_peak_rss_mb"] = monitor.end_window()
            result["server_side"] = self.server_side(name, server.url, result["workload"])
        finally:
            result["memory"] = monitor.stop()
            if other:
                result["database_memory"] = other.stop()
            result["elapsed_s"] = round(time.perf_counter() - started, 1)
        loaded = sum(r.get("points", 0) for r in result["workload"])
        loaded += result["server_side"]["ingest"].get("points_ok", 0)
        result["metric_points_stored"] = loaded
        return result

    def run_mlflow(self, name: str) -> None:
        base = self.work / name
        base.mkdir()
        port = free_port()
        argv = [str(self.python.parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{base}/mlflow.db",
                "--serve-artifacts", "--artifacts-destination", str(base / "artifacts"),
                "--host", "127.0.0.1", "--port", str(port), *MLFLOW_CONFIGS[name]]
        log(f"{name}: starting {' '.join(argv[1:])}")
        server = Server.start(name, argv, port, base / "server.log", cwd=base)
        try:
            result = self.measure(name, server, lambda: sqlite_bytes(base / "mlflow.db"))
        finally:
            server.stop()
        result["db_bytes"] = sqlite_bytes(base / "mlflow.db")
        result["db_tables"] = sqlite_table_bytes(base / "mlflow.db")
        result["command"] = "mlflow server " + " ".join(MLFLOW_CONFIGS[name])
        self.results["targets"][name] = result

    def run_cairn(self, name: str) -> None:
        base = self.work / name
        base.mkdir()
        pg = None
        if name == "cairn-postgres":
            reason = PgCluster.unavailable_reason()
            if reason:
                self.skip(name, reason)
                return
            pg = PgCluster(base)
            log(f"{name}: initdb + pg_ctl start on port {pg.port}")
            pg.start()
            uri = pg.uri
        else:
            uri = f"sqlite:///{base}/cairn.db"
        port = free_port()
        argv = [str(self.cairn), "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", uri,
                "--data-dir", str(base / "data"), "--artifacts-destination", str(base / "artifacts")]
        log(f"{name}: starting cairn server --backend-store-uri {uri}")
        try:
            server = Server.start(name, argv, port, base / "server.log", cwd=base)
            try:
                if pg:
                    result = self.measure(name, server, pg.database_bytes, [pg.postmaster_pid()])
                else:
                    result = self.measure(name, server, lambda: sqlite_bytes(base / "cairn.db"))
            finally:
                server.stop()
            if pg:
                result["db_bytes"] = pg.database_bytes()
                result["db_tables"] = {"metrics": pg.table_bytes(("metrics",)), "lineage": pg.table_bytes(LINEAGE_TABLES)}
                result["postgres_version"] = pg.version()
                # The engine's own limit, measured in the same cluster and database with the
                # server stopped, before the cluster goes.
                log(f"{name}: raw-postgres: binary COPY into a copy of the metrics table")
                result["raw_postgres"] = self.loadgen_run(name, ["raw-postgres", "--url", uri,
                                                                 "--rows", str(self.sizes.raw_rows)])
            else:
                result["db_bytes"] = sqlite_bytes(base / "cairn.db")
                result["db_tables"] = sqlite_table_bytes(base / "cairn.db")
            result["command"] = "cairn server --backend-store-uri " + ("postgresql://..." if pg else "sqlite:///...")
            self.results["targets"][name] = result
        finally:
            if pg:
                pg.stop()

    def skip(self, name: str, reason: str) -> None:
        log(f"{name}: skipped: {reason}")
        self.results["notes"].append(f"{name} skipped: {reason}")
        self.results["targets"][name] = {"skipped": reason}

    def disk(self) -> None:
        """The scratch disk's own sequential bandwidth, for the artifact scenario to be read
        against. `dd` with O_DIRECT (and an fsync) keeps the page cache out of both numbers."""
        mib = max(client_workload.SCALES[self.scale].artifact_mib, 256)
        log(f"disk: dd {mib} MiB write and read with O_DIRECT in {self.work}")
        self.results["disk"] = disk_bandwidth(self.work, mib)

    def artifact_source(self) -> None:
        """Makes the artifact scenario's file once, before any server is watched."""
        mib = client_workload.SCALES[self.scale].artifact_mib
        log(f"artifacts: writing the {mib} MiB seeded source file")
        path, digest = client_workload.artifact_file(self.work, mib)
        self.results["artifact_file"] = {"mib": mib, "sha256": digest, "path": str(path)}

    def raw_sqlite(self) -> None:
        log("raw-sqlite: the storage engine's own insert limit")
        self.results["raw_sqlite"] = self.loadgen_run("raw", ["raw-sqlite", "--migration", str(MIGRATION),
                                                              "--rows", str(self.sizes.raw_rows), "--dir", str(self.work)])


def disk_bandwidth(folder: Path, mib: int) -> dict:
    """Sequential write then read of `mib` MiB in 4 MiB blocks, bypassing the page cache."""
    probe = folder / "disk-probe.bin"
    out: dict = {"mib": mib, "method": "dd bs=4M oflag=direct conv=fsync / iflag=direct"}
    steps = {
        "write_mib_s": ["dd", "if=/dev/zero", f"of={probe}", "bs=4M", f"count={mib // 4}", "oflag=direct", "conv=fsync"],
        "read_mib_s": ["dd", f"if={probe}", "of=/dev/null", "bs=4M", "iflag=direct"],
    }
    try:
        for key, argv in steps.items():
            started = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                out["failed"] = done.stderr.strip()[-500:]
                break
            out[key] = round(mib / elapsed, 1)
    except (OSError, subprocess.TimeoutExpired) as e:
        out["failed"] = str(e)
    finally:
        probe.unlink(missing_ok=True)
    return out


def disk_shortage(folder: Path, scale: str, targets: int) -> str | None:
    """Why the scratch disk cannot hold this run, or None. Each target keeps the artifact
    scenario's file as an artifact and downloads it once more; the source file is one more copy,
    and the databases and the `dd` probe need a few GiB besides."""
    mib = client_workload.SCALES[scale].artifact_mib
    needed = (mib * (1 + 2 * targets)) * 2**20 + (4 if scale == "full" else 1) * 2**30
    free = shutil.disk_usage(folder).free
    if free >= needed:
        return None
    return (f"not enough free disk in {folder.parent}: {free / 2**30:.1f} GiB free, this run needs about "
            f"{needed / 2**30:.1f} GiB (set TMPDIR to a larger disk)")


def sqlite_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


# Cairn's tables that MLflow has no counterpart for in this workload: the lineage scenario's
# graph and predictions. They are left out of the bytes-per-metric-point comparison.
LINEAGE_TABLES = ("lineage_nodes", "lineage_edges", "predictions")


def sqlite_table_bytes(db: Path) -> dict:
    """Bytes on disk of the metrics table and of the lineage tables, indexes included, from
    SQLite's `dbstat` table (pages in use, so a checkpointed file is assumed)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')"))
        sizes: dict = {}
        for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            sizes[table] = sizes.get(table, 0) + size
    finally:
        conn.close()
    return {"metrics": sizes.get("metrics", 0), "lineage": sum(sizes.get(t, 0) for t in LINEAGE_TABLES)}


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1), "kernel": platform.release(),
            "cpu": cpu, "python": platform.python_version()}


def git_commit() -> str:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def versions(run: Run) -> dict:
    import mlflow

    def first_line(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    return {"mlflow": mlflow.__version__, "cairn": first_line([str(run.cairn), "--version"]),
            "cairn-bench": first_line([str(run.loadgen), "--version"])}


def main() -> int:
    parser = argparse.ArgumentParser(description="Cairn vs MLflow benchmark harness (use bench/run.sh)")
    parser.add_argument("--scale", choices=["smoke", "full"], default="smoke")
    parser.add_argument("--targets", default=None,
                        help="comma-separated subset of: " + ", ".join([*MLFLOW_CONFIGS, *CAIRN_TARGETS]))
    parser.add_argument("--cairn-bin", default=str(ROOT / "target/release/cairn"))
    parser.add_argument("--bench-bin", default=str(ROOT / "target/release/cairn-bench"))
    parser.add_argument("--results-dir", default=str(BENCH / "results"))
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch folder (databases, logs)")
    args = parser.parse_args()

    default_targets = ["mlflow-workers1", *CAIRN_TARGETS]
    if args.scale == "full":
        # The issue asks for MLflow's best configuration per row; at full scale both are run.
        default_targets.insert(1, "mlflow-gunicorn4")
    targets = args.targets.split(",") if args.targets else default_targets
    unknown = set(targets) - set(MLFLOW_CONFIGS) - set(CAIRN_TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")

    run = Run(args)
    shortage = disk_shortage(run.work, args.scale, len(targets))
    if shortage:
        shutil.rmtree(run.work, ignore_errors=True)
        log(shortage)
        return 2
    started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run.results.update({"scale": args.scale, "started": started, "machine": machine_info(),
                        "commit": git_commit(), "versions": versions(run), "work_dir": str(run.work)})
    log(f"scale {args.scale}, targets {', '.join(targets)}, scratch {run.work}")
    failures: list[str] = []
    run.disk()
    run.artifact_source()
    for name in targets:
        try:
            if name in MLFLOW_CONFIGS:
                run.run_mlflow(name)
            else:
                run.run_cairn(name)
        except Exception as e:  # noqa: BLE001 - one target failing must not lose the others' numbers
            log(f"{name}: FAILED: {e}")
            failures.append(f"{name} failed: {e}")
            run.results["targets"][name] = {"failed": str(e)}
    run.raw_sqlite()

    if args.scale == "smoke":
        failures += report.correctness_failures(run.results)
    run.results["failures"] = failures
    table = report.table(run.results)
    print(table)
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{started}-{args.scale}"
    Path(f"{stem}.json").write_text(json.dumps(run.results, indent=2) + "\n")
    Path(f"{stem}.md").write_text(report.markdown(run.results, table))
    log(f"wrote {stem}.json and {stem}.md")
    if failures:
        # The servers' and workloads' logs are in the scratch folder; a failure needs them.
        log(f"kept {run.work} for its logs")
    elif not args.keep_work:
        shutil.rmtree(run.work, ignore_errors=True)
    if failures:
        for f in failures:
            log(f"FAILURE: {f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
