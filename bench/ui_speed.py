"""UI speed in headless Chromium: Cairn's UI and MLflow's own UI (the build its wheel ships under
mlflow/server/js/build) on the same data, side by side.

For each server: an experiment of N runs made by `cairn-bench search` (each run: 3 params, 2
metrics), and one run with a P-point `loss` history made by `cairn-bench history`. Then, in a fresh
headless Chromium per measurement (cold cache):

- runs page: time from navigation to the first run row on screen;
- sort by a metric column (Cairn: the `acc` header; the app marks the redrawn rows);
- scrolling: frame times while the runs grid scrolls 200 frames, and how many runs were loaded
  at the end (pages are fetched as the view approaches them, never all at once);
- the P-point run's chart: navigation to a drawn chart;
- an overlay of R runs with S-step `loss` histories each (100 x 10,000 by default): navigation
  to the runs view's chart tab with all R selected, to the drawn chart (Cairn only; logged over
  the REST API in batches of 1,000 points).

Cairn's numbers come from the app's own `performance.mark("cairn:<view>:ready")`. MLflow sets no
such marks, so for both UIs a script installed before any page script (CDP
`Page.addScriptToEvaluateOnNewDocument`) records `performance.now()` when a MutationObserver first
sees the condition (a run-name link, a drawn plot). Both clocks start at navigation.

    /work/main/.venv-test/bin/python bench/ui_speed.py --runs 10000 --points 1000000 --mlflow

Prints one JSON object and writes it to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import Server, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Installed before any page script: records when a CSS selector first matches (and, optionally,
# its text matches a pattern), under window.__seen[name].
WATCH = """
window.__seen = {};
window.__watch = (name, css, pattern) => {
  const re = pattern ? new RegExp(pattern) : null;
  const check = () => {
    if (window.__seen[name] !== undefined) return true;
    for (const el of document.querySelectorAll(css)) {
      if (!re || re.test(el.textContent || "")) { window.__seen[name] = performance.now(); return true; }
    }
    return false;
  };
  if (check()) return;
  const obs = new MutationObserver(() => { if (check()) obs.disconnect(); });
  obs.observe(document, { childList: true, subtree: true, characterData: true });
};
"""


def browser(chromium: str, chromedriver: str, watches: list[tuple[str, str, str | None]]):
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    script = WATCH + "".join(f"window.__watch({json.dumps(n)}, {json.dumps(c)}, {json.dumps(p)});" for n, c, p in watches)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})
    return driver


def wait_seen(driver, name: str, timeout: float = 120) -> float:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: d.execute_script("return window.__seen && window.__seen[arguments[0]]", name))


def mark_time(driver, view: str, at_least: int = 1, timeout: float = 120) -> float:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(
            "const m = performance.getEntriesByName(arguments[0]); return m.length >= arguments[1] ? m[arguments[1] - 1].startTime : null",
            f"cairn:{view}:ready",
            at_least,
        )
    )


SCROLL = """
const done = arguments[arguments.length - 1];
const el = document.querySelector(arguments[0]);
if (!el) { done(null); return; }
const frames = []; let last = performance.now(); let n = 0;
const step = (t) => {
  frames.push(t - last); last = t; el.scrollTop += 300;
  if (++n < 200) requestAnimationFrame(step); else done(frames.slice(1));
};
requestAnimationFrame(step);
"""


def frame_stats(frames: list[float] | None) -> dict | None:
    if not frames:
        return None
    s = sorted(frames)
    return {"median_ms": round(statistics.median(s), 1), "p95_ms": round(s[int(len(s) * 0.95)], 1), "max_ms": round(s[-1], 1), "over_50ms": sum(f > 50 for f in s)}


def measure_cairn(url: str, exp: str, _run: str, args) -> dict:
    out: dict = {}
    d = browser(args.chromium, args.chromedriver, [("row", ".grid-row[data-run-id] a", None)])
    try:
        d.get(f"{url}/#/experiments/{exp}?cols=metrics.acc")
        out["first_rows_ms"] = round(mark_time(d, "runs"), 1)
        out["first_rows_observed_ms"] = round(wait_seen(d, "row"), 1)
        t0 = d.execute_script("const t = performance.now(); document.querySelector(\"button[aria-label='Sort by acc']\").click(); return t;")
        out["sort_by_metric_ms"] = round(mark_time(d, "runs", 2) - t0, 1)
        d.set_script_timeout(60)
        out["scroll_frames"] = frame_stats(d.execute_async_script(SCROLL, ".runs-grid"))
        out["runs_loaded_after_scroll"] = d.execute_script("return document.querySelector('.toolbar .muted').textContent")
        out["rows_in_dom"] = d.execute_script("return document.querySelectorAll('.grid-row').length")
        out["js_bytes"] = d.execute_script(
            "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('.js')).reduce((s, e) => s + e.transferSize, 0)"
        )
    finally:
        d.quit()
    return out


def measure_mlflow(url: str, exp: str, run_exp: str, run: str, args) -> dict:
    out: dict = {}
    d = browser(args.chromium, args.chromedriver, [("row", "a", r"^run-\d+$")])
    try:
        # MLflow 3 opens an experiment on its GenAI overview; the runs table is its own tab.
        d.get(f"{url}/#/experiments/{exp}/runs")
        try:
            out["first_rows_observed_ms"] = round(wait_seen(d, "row"), 1)
        except Exception:
            d.save_screenshot(str(Path(args.out).with_suffix(".mlflow-runs.png")))
            raise
        out["js_bytes"] = d.execute_script(
            "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('.js')).reduce((s, e) => s + (e.transferSize || e.encodedBodySize), 0)"
        )
    finally:
        d.quit()
    d = browser(args.chromium, args.chromedriver, [("chart", ".js-plotly-plot .scatterlayer .trace path, canvas", None)])
    try:
        d.get(f"{url}/#/metric?runs=[%22{run}%22]&metric=%22loss%22&experiments=[%22{run_exp}%22]")
        out["chart_observed_ms"] = round(wait_seen(d, "chart", timeout=60), 1)
    except Exception as e:  # noqa: BLE001 - the chart page's markup differs between MLflow versions
        out["chart_error"] = type(e).__name__
    finally:
        d.quit()
    return out


def populate(bench: str, url: str, runs: int, points: int) -> tuple[str, str, dict]:
    started = time.perf_counter()
    search = json.loads(subprocess.run([bench, "search", "--url", url, "--create-runs", str(runs), "--repeat", "1"], check=True, capture_output=True, text=True).stdout)
    history = json.loads(
        subprocess.run([bench, "history", "--url", url, "--steps", str(points), "--repeat", "1"], check=True, capture_output=True, text=True).stdout
    )
    # The history run lives in its own experiment; the UI's run address needs that experiment.
    with urllib.request.urlopen(f"{url}/api/2.0/mlflow/runs/get?run_id={history['run_id']}") as r:
        run_experiment = json.load(r)["run"]["info"]["experiment_id"]
    return search["experiment_id"], history["run_id"], {"populate_s": round(time.perf_counter() - started, 1), "history_experiment": run_experiment}


def median_of(results: list[dict]) -> dict:
    out = {}
    for key in results[0]:
        values = [r.get(key) for r in results]
        out[key] = round(statistics.median(values), 1) if all(isinstance(v, (int, float)) for v in values) else values[-1]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cairn-bin", default=str(ROOT / "target/debug/cairn"))
    p.add_argument("--bench-bin", default=str(ROOT / "target/debug/cairn-bench"))
    p.add_argument("--mlflow", action="store_true", help="also measure MLflow's UI (mlflow server from this Python's venv)")
    p.add_argument("--runs", type=int, default=10000)
    p.add_argument("--points", type=int, default=1000000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--overlay-runs", type=int, default=100, help="runs in the overlay chart (0: skip it)")
    p.add_argument("--overlay-steps", type=int, default=10000)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    p.add_argument("--out", default=str(ROOT / "bench/results/ui_speed.json"))
    args = p.parse_args()

    result: dict = {"runs": args.runs, "points": args.points, "repeat": args.repeat, "cairn_bin": args.cairn_bin}
    with tempfile.TemporaryDirectory(prefix="cairn-ui-speed.") as tmp:
        work = Path(tmp)
        targets = ["cairn"] + (["mlflow"] if args.mlflow else [])
        for name in targets:
            base = work / name
            base.mkdir()
            port = free_port()
            if name == "cairn":
                argv = [args.cairn_bin, "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", f"sqlite:///{base}/cairn.db",
                        "--data-dir", str(base / "data"), "--artifacts-destination", str(base / "artifacts")]
            else:
                argv = [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{base}/mlflow.db",
                        "--serve-artifacts", "--artifacts-destination", str(base / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
            server = Server.start(name, argv, port, base / "server.log", cwd=base)
            try:
                exp, run, info = populate(args.bench_bin, server.url, args.runs, args.points)
                run_exp = info.pop("history_experiment") or exp
                if name == "cairn":
                    rows = [measure_cairn(server.url, exp, run, args) for _ in range(args.repeat)]
                    chart = [measure_cairn_chart(server.url, run_exp, run, args) for _ in range(args.repeat)]
                    result[name] = {**info, **median_of(rows), **median_of(chart)}
                    if args.overlay_runs:
                        overlay_exp, overlay_ids, seconds = populate_overlay(server.url, args.overlay_runs, args.overlay_steps)
                        overlay = [measure_cairn_overlay(server.url, overlay_exp, overlay_ids, args) for _ in range(args.repeat)]
                        result[name].update({"overlay_populate_s": seconds, "overlay_runs": args.overlay_runs, "overlay_steps": args.overlay_steps, **median_of(overlay)})
                else:
                    result[name] = {**info, **median_of([measure_mlflow(server.url, exp, run_exp, run, args) for _ in range(args.repeat)])}
            finally:
                server.stop()
    if "mlflow" in result:
        c, m = result["cairn"], result["mlflow"]
        result["ratios_mlflow_over_cairn"] = {
            k: round(m[k] / c[k], 1) for k in ("first_rows_observed_ms", "js_bytes") if isinstance(m.get(k), (int, float)) and c.get(k)
        }
        if isinstance(m.get("chart_observed_ms"), (int, float)) and c.get("chart_ms"):
            result["ratios_mlflow_over_cairn"]["chart"] = round(m["chart_observed_ms"] / c["chart_ms"], 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


def _post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as r:
        return json.load(r)


def populate_overlay(url: str, runs: int, steps: int) -> tuple[str, list[str], float]:
    """An experiment of `runs` runs, each with a `steps`-step `loss` history."""
    started = time.perf_counter()
    exp = _post(url, "experiments/create", {"name": f"ui-overlay-{time.time_ns()}"})["experiment_id"]
    ids = []
    for r in range(runs):
        run = _post(url, "runs/create", {"experiment_id": exp, "run_name": f"overlay-{r:03d}", "start_time": 1})["run"]["info"]["run_id"]
        for first in range(0, steps, 1000):
            metrics = [{"key": "loss", "value": 1.0 / (1 + s) + r * 0.001 + (0.5 if s % 997 == r % 997 else 0.0), "timestamp": 1 + s, "step": s}
                       for s in range(first, min(steps, first + 1000))]
            _post(url, "runs/log-batch", {"run_id": run, "metrics": metrics})
        ids.append(run)
    return exp, ids, round(time.perf_counter() - started, 1)


def measure_cairn_overlay(url: str, exp: str, run_ids: list[str], args) -> dict:
    d = browser(args.chromium, args.chromedriver, [])
    try:
        d.get(f"{url}/#/experiments/{exp}?view=charts&sel={','.join(run_ids)}")
        out = {"overlay_chart_ms": round(mark_time(d, "chart"), 1)}
        out["overlay_points_drawn"] = d.execute_script("return performance.getEntriesByName('cairn:chart:ready')[0].detail.points")
        return out
    finally:
        d.quit()


def measure_cairn_chart(url: str, exp: str, run: str, args) -> dict:
    d = browser(args.chromium, args.chromedriver, [])
    try:
        d.get(f"{url}/#/experiments/{exp}/runs/{run}")
        return {"chart_ms": round(mark_time(d, "chart"), 1)}
    finally:
        d.quit()


if __name__ == "__main__":
    sys.exit(main())
