"""Server processes for the benchmark: MLflow, Cairn, a throw-away PostgreSQL cluster, and a
monitor of each server's memory.

Every process is started in its own session so that it, and only it, can be stopped with its
children by process-group id.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """A TCP port nothing listens on right now (another process could still take it first)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering; log tail:\n{tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server did not answer {url}/health within {timeout_s:.0f} s; log tail:\n{tail(log)}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Server:
    """A running server process (and its children), stopped by process group."""

    name: str
    url: str
    proc: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, name: str, argv: list[str], port: int, log: Path, cwd: Path, env: dict | None = None) -> Server:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True
            )
        server = cls(name, f"http://127.0.0.1:{port}", proc, log)
        try:
            wait_healthy(server.url, proc, 120, log)
        except Exception:
            server.stop()
            raise
        return server

    def stop(self, grace_s: float = 30) -> None:
        """SIGTERM the group (graceful shutdown flushes and checkpoints), SIGKILL it if it lingers."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        # Children (MLflow's job runner and its consumers) may outlive the leader briefly.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _proc_table() -> dict[int, int]:
    """pid -> parent pid for every visible process."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields start after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(root: int) -> list[int]:
    """`root` and all of its descendants."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _proc_table().items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class MemoryMonitor:
    """Polls the summed resident memory of one or more process trees while a server runs.

    `peak_rss_mb` is the highest polled sum of VmRSS. `sum_hwm_mb` adds each process's own
    high-water mark (VmHWM), which catches spikes between polls but over-counts when processes
    peak at different times: the truth lies between the two.
    """

    roots: list[int]
    interval_s: float = 0.25
    peak_rss_kb: int = 0
    idle_rss_kb: int = 0
    hwm_kb: dict[int, int] = field(default_factory=dict)
    max_processes: int = 0
    _window_kb: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> int:
        pids = [p for root in self.roots for p in process_tree(root)]
        self.max_processes = max(self.max_processes, len(pids))
        total = 0
        for pid in pids:
            total += _status_kb(pid, "VmRSS")
            hwm = _status_kb(pid, "VmHWM")
            if hwm:
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
        self.peak_rss_kb = max(self.peak_rss_kb, total)
        if self._window_kb is not None:
            self._window_kb = max(self._window_kb, total)
        return total

    def begin_window(self) -> None:
        """Starts a window whose own peak `end_window` returns (one scenario's peak)."""
        self._window_kb = self.sample()

    def end_window(self) -> float:
        """The highest polled sum of VmRSS since `begin_window`, in MB."""
        self._window_kb = max(self._window_kb or 0, self.sample())
        peak, self._window_kb = self._window_kb, None
        return round(peak / 1024, 1)

    def start(self) -> MemoryMonitor:
        self.idle_rss_kb = self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def stop(self) -> dict:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.sample()
        return {
            "idle_rss_mb": round(self.idle_rss_kb / 1024, 1),
            "peak_rss_mb": round(self.peak_rss_kb / 1024, 1),
            "sum_hwm_mb": round(sum(self.hwm_kb.values()) / 1024, 1),
            "processes": self.max_processes,
        }


class PgCluster:
    """A throw-away PostgreSQL cluster on a free port, owned by the `postgres` user when run as
    root (PostgreSQL refuses to run as root)."""

    def __init__(self, base: Path):
        self.dir = base / "pg"
        self.data = self.dir / "data"
        self.port = free_port()
        self.log = self.dir / "postgres.log"
        self.as_postgres = os.geteuid() == 0

    @staticmethod
    def unavailable_reason() -> str | None:
        if not (PG_BIN / "initdb").exists():
            return f"PostgreSQL binaries not found in {PG_BIN}"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root but `runuser` is missing, so initdb cannot run as `postgres`"
        return None

    def _run(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)

    def start(self) -> None:
        self.dir.mkdir(parents=True)
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"])
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"])
        self.psql("CREATE DATABASE cairn", database="postgres")

    def psql(self, sql: str, database: str = "cairn") -> str:
        out = self._run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                         "-d", database, "-At", "-c", sql])
        return out.stdout.strip()

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/cairn"

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def database_bytes(self) -> int:
        return int(self.psql("SELECT pg_database_size('cairn')"))

    def table_bytes(self, tables: tuple[str, ...]) -> int:
        """Bytes of these tables (the harness's own constants), indexes and TOAST included."""
        names = ", ".join(f"'{t}'" for t in tables)
        return int(self.psql(f"SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                             f"JOIN pg_namespace n ON n.oid = c.relnamespace "
                             f"WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname IN ({names})"))

    def version(self) -> str:
        return subprocess.run([str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True).stdout.strip()

    def stop(self) -> None:
        try:
            self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        except (subprocess.CalledProcessError, OSError):
            pass
