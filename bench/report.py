"""Turns one benchmark run's results into the comparison table, the Markdown report and, at smoke
scale, the list of correctness failures.

Ratios are always "how many times better Cairn is": Cairn/MLflow for rates, MLflow/Cairn for
durations and sizes. MLflow's column is its best configuration for that row (named in brackets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

CAIRN_COLUMNS = [("cairn-sqlite", "Cairn SQLite"), ("cairn-postgres", "Cairn PG")]
MLFLOW_SHORT = {"mlflow-workers1": "w1", "mlflow-gunicorn4": "g4"}

Getter = Callable[[dict], "float | None"]


@dataclass(frozen=True)
class Row:
    label: str
    unit: str
    higher_is_better: bool
    value: Getter
    floor: Getter | None = None


def scenario(t: dict, name: str) -> dict | None:
    return next((r for r in t.get("workload", []) if r.get("scenario") == name), None)


def rate(name: str) -> Getter:
    def get(t: dict) -> float | None:
        r = scenario(t, name)
        return r["count"] / r["wall_s"] if r and r["wall_s"] > 0 else None
    return get


def rate_floor(name: str, cores: int = 1) -> Getter:
    """The most this client can do if the server answered instantly: count over its CPU time,
    with the CPU time spread over `cores` when several client processes share the machine."""
    def get(t: dict) -> float | None:
        r = scenario(t, name)
        return r["count"] / (r["client_cpu_s"] / cores) if r and r["client_cpu_s"] > 0 else None
    return get


def seconds(name: str) -> Getter:
    def get(t: dict) -> float | None:
        r = scenario(t, name)
        return r["wall_s"] if r else None
    return get


def cpu_seconds(name: str) -> Getter:
    def get(t: dict) -> float | None:
        r = scenario(t, name)
        return r["client_cpu_s"] if r else None
    return get


def loadgen(bench: str, key: str) -> Getter:
    def get(t: dict) -> float | None:
        r = t.get("server_side", {}).get(bench, {})
        v = r.get(key)
        return float(v) if isinstance(v, (int, float)) and "failed" not in r else None
    return get


def bytes_per_point(t: dict) -> float | None:
    """What the run added to the database, per metric point logged, leaving out the tables of
    the lineage scenario, which has no MLflow counterpart."""
    points, size = t.get("metric_points_stored"), t.get("db_bytes")
    lineage = t.get("db_tables", {}).get("lineage", 0)
    return (size - t.get("db_bytes_at_start", 0) - lineage) / points if points and size else None


def lineage_mb(t: dict) -> float | None:
    """The lineage scenario's tables; MLflow has none, so it shows as a dash, not a zero."""
    size = t.get("db_tables", {}).get("lineage")
    return size / 1e6 if size else None


def metrics_table_per_point(t: dict) -> float | None:
    """The metrics table alone (indexes included), per metric point logged."""
    points, size = t.get("metric_points_stored"), t.get("db_tables", {}).get("metrics")
    return size / points if points and size else None


def rows(results: dict) -> list[Row]:
    cores = results.get("machine", {}).get("nproc") or 1
    raw = results.get("raw_sqlite", {}).get("rows_per_s")
    history_points = next((scenario(t, "history")["count"] for t in results["targets"].values()
                           if scenario(t, "history")), None)
    procs = next((scenario(t, "concurrent")["procs"] for t in results["targets"].values()
                  if scenario(t, "concurrent")), 8)
    search_runs = next((scenario(t, "create_runs")["count"] for t in results["targets"].values()
                        if scenario(t, "create_runs")), None)

    disk = results.get("disk", {})
    artifact_mib = results.get("artifact_file", {}).get("mib", "?")

    def disk_share(name: str, disk_key: str) -> Getter:
        def get(t: dict) -> float | None:
            v, d = rate(name)(t), disk.get(disk_key)
            return 100 * v / d if v is not None and d else None
        return get

    def copy_share(t: dict) -> float | None:
        v, copy = loadgen("ingest", "points_per_s")(t), t.get("raw_postgres", {}).get("rows_per_s")
        return 100 * v / copy if v is not None and copy else None

    def ingest_share(t: dict) -> float | None:
        v = loadgen("ingest", "points_per_s")(t)
        return 100 * v / raw if v is not None and raw else None

    return [
        Row("1. log_metric, one call at a time", "calls/s", True, rate("log_metric"), rate_floor("log_metric")),
        Row("2. log_batch, 1,000 points per batch", "points/s", True, rate("log_batch"), rate_floor("log_batch")),
        Row("3. create run + 10 params + 3 metrics + end", "runs/s", True, rate("create_runs"), rate_floor("create_runs")),
        Row(f"3. search_runs over {search_runs or '?'} runs, filter + ORDER BY, all pages", "s", False,
            seconds("search"), cpu_seconds("search")),
        Row(f"4. get_metric_history, {history_points or '?'} steps", "s", False, seconds("history"), cpu_seconds("history")),
        Row(f"5. artifact upload, {artifact_mib} MiB file", "MiB/s", True, rate("artifact_upload")),
        Row(f"5. artifact download, {artifact_mib} MiB file, digest checked", "MiB/s", True, rate("artifact_download")),
        Row(f"5. upload as % of disk write ({fmt(disk.get('write_mib_s'))} MiB/s, O_DIRECT)", "%", True,
            disk_share("artifact_upload", "write_mib_s")),
        Row(f"5. download as % of disk read ({fmt(disk.get('read_mib_s'))} MiB/s, O_DIRECT)", "%", True,
            disk_share("artifact_download", "read_mib_s")),
        Row("5. peak server RSS during the artifact scenario", "MB", False, lambda t: t.get("artifact_peak_rss_mb")),
        Row(f"6. {procs} client processes logging at once", "points/s", True, rate("concurrent"), rate_floor("concurrent", cores)),
        Row("7. lineage: bulk prediction ingest, 5,000 per request (Rust)", "predictions/s", True,
            loadgen("lineage", "predictions_per_sec")),
        Row("7. lineage: provenance trace of one prediction, deep graph (Rust, median)", "ms", False,
            loadgen("lineage", "trace_ms_median")),
        Row("server: ingest, 8 writers, log-batch 1,000 (Rust)", "points/s", True, loadgen("ingest", "points_per_s")),
        Row("server: ingest p99 latency per batch (Rust)", "ms", False, loadgen("ingest", "p99_ms")),
        Row("server: ingest errors, of which 'database is locked'", "count", False, loadgen("ingest", "errors")),
        Row("server: search, same query, all pages (Rust, best of runs)", "s", False, loadgen("search", "seconds_min")),
        Row("server: history, same run, all pages (Rust, best of runs)", "s", False, loadgen("history", "seconds_min")),
        Row(f"server: ingest as % of raw SQLite insert ({fmt(raw)} rows/s)", "%", True, ingest_share),
        Row("server: PostgreSQL ingest as % of raw binary COPY into the same table", "%", True, copy_share),
        Row("peak server RSS (whole process tree)", "MB", False, lambda t: t.get("memory", {}).get("peak_rss_mb")),
        Row("peak PostgreSQL cluster RSS (beside the server)", "MB", False,
            lambda t: t.get("database_memory", {}).get("peak_rss_mb")),
        # Bytes per point equals megabytes per million points, so one row serves both.
        Row("database size, whole run", "MB", False, lambda t: t.get("db_bytes") and t["db_bytes"] / 1e6),
        Row("lineage tables (predictions and graph), Cairn only", "MB", False, lineage_mb),
        Row("database growth per metric point, lineage tables left out (= MB per 1M points)", "bytes", False,
            bytes_per_point),
        Row("metrics table per metric point, indexes included", "bytes", False, metrics_table_per_point),
    ]


def fmt(v: float | None) -> str:
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def best_mlflow(row: Row, targets: dict) -> tuple[float | None, str]:
    found = [(row.value(t), name) for name, t in targets.items() if name.startswith("mlflow-")]
    found = [(v, n) for v, n in found if v is not None]
    if not found:
        return None, ""
    v, name = (max if row.higher_is_better else min)(found)
    return v, MLFLOW_SHORT.get(name, name)


def ratio(row: Row, mlflow: float | None, cairn: float | None) -> str:
    if mlflow is None or cairn is None or row.unit in ("count", "%"):
        return "–"
    if mlflow == 0 or cairn == 0:
        return "–"
    r = cairn / mlflow if row.higher_is_better else mlflow / cairn
    return f"{r:.1f}×" if r < 100 else f"{r:,.0f}×"


def over_floor(row: Row, t: dict | None) -> str:
    """How far Cairn's wall time is above the client's own CPU time (the target is within 15%)."""
    if t is None or row.floor is None:
        return "–"
    v, f = row.value(t), row.floor(t)
    if v is None or f is None or v == 0 or f == 0:
        return "–"
    wall_over_cpu = f / v if row.higher_is_better else v / f
    return f"{(wall_over_cpu - 1) * 100:+.0f}%"


def errors_cell(t: dict | None) -> str:
    r = (t or {}).get("server_side", {}).get("ingest", {})
    if "errors" not in r:
        return "–"
    return f"{r['errors']} ({r['db_locked']})"


def table(results: dict) -> str:
    targets = {n: t for n, t in results["targets"].items() if "workload" in t}
    header = ["scenario", "unit", "MLflow (best)", *[c for _, c in CAIRN_COLUMNS],
              *[f"{c} vs MLflow" for _, c in CAIRN_COLUMNS], "client floor", "Cairn SQLite over floor"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    sqlite = targets.get("cairn-sqlite")
    floor_source = sqlite or next(iter(targets.values()), None)
    for row in rows(results):
        m, config = best_mlflow(row, targets)
        cairn = [row.value(targets[n]) if n in targets else None for n, _ in CAIRN_COLUMNS]
        if row.unit == "count":
            mlflow_errors = [errors_cell(t) for n, t in targets.items() if n.startswith("mlflow-")]
            values = [" / ".join(mlflow_errors) or "–", *[errors_cell(targets.get(n)) for n, _ in CAIRN_COLUMNS]]
        else:
            values = [f"{fmt(m)} ({config})" if m is not None else "–", *[fmt(c) for c in cairn]]
        floor = row.floor(floor_source) if row.floor and floor_source else None
        cells = [row.label, row.unit, *values, *[ratio(row, m, c) for c in cairn], fmt(floor),
                 over_floor(row, sqlite)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(results: dict, table_text: str) -> str:
    m, v = results["machine"], results["versions"]
    configs = ", ".join(f"{MLFLOW_SHORT.get(n, n)} = `{t['command']}`" for n, t in results["targets"].items()
                        if n.startswith("mlflow-") and "command" in t)
    raw = results.get("raw_sqlite", {})
    lines = [
        f"# Cairn vs MLflow, {results['scale']} scale, {results['started']}",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}, Python {m['python']}",
        f"- versions: MLflow {v['mlflow']}; {v['cairn']}; {v['cairn-bench']}; commit {results['commit']}",
        f"- MLflow configurations: {configs or 'none ran'} (SQLite, `--serve-artifacts`)",
        f"- raw SQLite insert, Cairn's `metrics` schema: {fmt(raw.get('rows_per_s'))} rows/s, "
        f"{fmt(raw.get('bytes_per_row'))} bytes/row ({raw.get('rows', '?')} rows, one transaction)",
        f"- scratch disk, sequential with O_DIRECT: {fmt(results.get('disk', {}).get('write_mib_s'))} MiB/s write, "
        f"{fmt(results.get('disk', {}).get('read_mib_s'))} MiB/s read ({results.get('disk', {}).get('mib', '?')} MiB)",
        "",
        table_text,
        "",
        "Rows 1-7 go through the real `mlflow` client; \"client floor\" is what that client alone can do "
        "(its own CPU time, from the Cairn SQLite run), and \"over floor\" is how much longer Cairn took than "
        "that. \"server:\" rows use the Rust load generator `cairn-bench` on the same data. Ratios are "
        "times better for Cairn. Errors are shown as `errors (database is locked)` per server.",
    ]
    for name, t in results["targets"].items():
        if "skipped" in t:
            lines.append(f"\n- {name}: skipped: {t['skipped']}")
        elif "failed" in t:
            lines.append(f"\n- {name}: FAILED: {t['failed']}")
    if results.get("failures"):
        lines += ["", "## Failures", *[f"- {f}" for f in results["failures"]]]
    return "\n".join(lines) + "\n"


def correctness_failures(results: dict) -> list[str]:
    """Same and correct answers from every server that ran; speed is never judged."""
    failures = []
    ran = {n: t for n, t in results["targets"].items() if "workload" in t}
    for name, t in ran.items():
        for r in t["workload"]:
            if not r.get("verified"):
                failures.append(f"{name}: workload scenario {r['scenario']} returned wrong results")
        for bench, r in t.get("server_side", {}).items():
            if "failed" in r:
                failures.append(f"{name}: cairn-bench {bench} failed: {r['failed']}")
            elif r.get("verified") is False:
                failures.append(f"{name}: cairn-bench {bench} returned wrong results")
            if name.startswith("cairn") and r.get("errors"):
                failures.append(f"{name}: cairn-bench {bench} saw {r['errors']} errors: {r.get('first_error')}")
    for scen, key in (("search", "run_names"), ("history", "count"), ("log_batch", "count")):
        answers = {n: scenario(t, scen).get(key) for n, t in ran.items() if scenario(t, scen)}
        if len({repr(a) for a in answers.values()}) > 1:
            failures.append(f"servers disagree on {scen}: " + ", ".join(f"{n}={str(a)[:80]}" for n, a in answers.items()))
    for name, t in ran.items():
        # The Rust load generator searched the experiment the workload made: same hits expected.
        rust, py = t.get("server_side", {}).get("search", {}).get("hits"), scenario(t, "search")
        if py and rust is not None and rust != py["count"]:
            failures.append(f"{name}: cairn-bench search found {rust} runs, the mlflow client {py['count']}")
    raw = results.get("raw_sqlite", {})
    if not raw.get("verified"):
        failures.append(f"raw-sqlite did not store every row: {raw}")
    for name, t in ran.items():
        copy = t.get("raw_postgres")
        if copy is not None and not copy.get("verified"):
            failures.append(f"{name}: raw-postgres did not store every row: {copy}")
    return failures
