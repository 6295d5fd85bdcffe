"""Two `cairn` binaries, one chart: navigation to the drawn chart of a long series, measured in
headless Chromium on the same data, alternating binaries round by round so that both see the
same machine load; also the server CPU time each page cost (from /proc/<pid>/stat), the steadier
number on a shared machine.

    python bench/chart_ab.py --store /path/cairn.db --experiment 1 --run RUN_ID \\
        --binary before=/path/old/cairn --binary after=target/debug/cairn --rounds 3

Each binary gets its own copy of the store (a newer binary may migrate it). Fill the store first,
for example with `cairn-bench history --steps 1000000` against a server on it. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import Server, free_port  # noqa: E402
from ui_speed import browser, mark_time  # noqa: E402


def cpu_ms(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat, in clock ticks of 10 ms.
    return (int(fields[11]) + int(fields[12])) * 10


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True, help="a SQLite store holding the run")
    p.add_argument("--experiment", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--binary", action="append", required=True, help="NAME=PATH, twice or more")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = p.parse_args()
    binaries = {name: str(Path(path).resolve()) for name, path in (b.split("=", 1) for b in args.binary)}
    times: dict[str, list[float]] = {name: [] for name in binaries}
    cpu: dict[str, list[int]] = {name: [] for name in binaries}
    with tempfile.TemporaryDirectory(prefix="cairn-chart-ab.") as tmp:
        work = Path(tmp)
        for name in binaries:
            (work / name).mkdir()
            shutil.copy(args.store, work / name / "cairn.db")
        for _ in range(args.rounds):
            for name, binary in binaries.items():
                base, port = work / name, free_port()
                argv = [binary, "server", "--host", "127.0.0.1", "--port", str(port),
                        "--backend-store-uri", f"sqlite:///{base / 'cairn.db'}", "--data-dir", str(base / "data")]
                server = Server.start(name, argv, port, base / "server.log", cwd=base)
                try:
                    before = cpu_ms(server.proc.pid)
                    d = browser(args.chromium, args.chromedriver, [])
                    try:
                        d.get(f"{server.url}/#/experiments/{args.experiment}/runs/{args.run}")
                        times[name].append(round(mark_time(d, "chart"), 1))
                        time.sleep(1.0)  # the page's other requests finish and are counted
                    finally:
                        d.quit()
                    cpu[name].append(cpu_ms(server.proc.pid) - before)
                finally:
                    server.stop()
    print(json.dumps({
        "chart_ms": times,
        "median_chart_ms": {k: statistics.median(v) for k, v in times.items()},
        "server_cpu_ms_per_page": cpu,
        "median_cpu_ms": {k: statistics.median(v) for k, v in cpu.items()},
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
