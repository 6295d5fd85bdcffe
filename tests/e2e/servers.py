"""Start, stop and kill tracking-server processes for the end-to-end tests.

The same suite drives either a real `cairn server` or, in reference mode, a real `mlflow server`,
so that a test proven on MLflow and failing on Cairn points at Cairn. Everything here is plain
process management: no test logic.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]

# A cold `mlflow server` runs its schema migrations before it answers, which takes several
# seconds on a loaded two-core machine; Cairn starts far faster but shares the budget.
STARTUP_TIMEOUT_SECS = 120.0


def free_port() -> int:
    """A TCP port that was free a moment ago on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cairn_binary() -> Path:
    """The `cairn` binary to test: `CAIRN_BIN`, else the newest of the release and debug builds."""
    if env := os.environ.get("CAIRN_BIN"):
        return Path(env)
    candidates = [REPO_ROOT / "target" / kind / "cairn" for kind in ("release", "debug")]
    existing = [p for p in candidates if p.is_file()]
    if not existing:
        raise RuntimeError(
            "no cairn binary found: build it with `cargo build --release -p cairn` or set CAIRN_BIN"
        )
    # The newest build is the one the developer just made; an old release binary beside a fresh
    # debug one would otherwise test stale code.
    return max(existing, key=lambda p: p.stat().st_mtime)


def mlflow_binary() -> Path:
    """The `mlflow` launcher of the interpreter running the tests (the test venv)."""
    path = Path(sys.executable).with_name("mlflow")
    if not path.is_file():
        found = shutil.which("mlflow")
        if found is None:
            raise RuntimeError("reference mode needs the `mlflow` command from the test venv")
        path = Path(found)
    return path


def create_postgres_database(admin_url: str) -> str:
    """Create a fresh, uniquely named database in the shared cluster and return its URL.

    Each server gets its own database so that tests never see another server's data, and the
    cluster (started once by `scripts/test.sh`) is thrown away as a whole at the end.
    """
    name = "e2e_" + uuid.uuid4().hex[:12]
    subprocess.run(
        ["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", f"CREATE DATABASE {name}"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


def run_psql(url: str, sql: str) -> str:
    """Run one SQL statement with `psql` and return its unaligned, tuples-only output."""
    out = subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-A", "-t", "-q", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip()


@dataclass
class Server:
    """One tracking-server process on a free loopback port.

    `backend_uri` and `workdir` survive `stop`/`kill`, so a test can restart the server on the
    same data, or inspect and tamper with the store while it is down.
    """

    kind: str  # "cairn" or "mlflow"
    backend: str  # "sqlite" or "postgresql"
    backend_uri: str
    workdir: Path
    sqlite_path: Path | None = None
    # `--artifacts-destination` (a folder or `s3://bucket/prefix`); `None` keeps each server's
    # default (Cairn: `artifacts` in its data folder; MLflow: `artifacts` in the workdir).
    artifacts_destination: str | None = None
    # Extra environment for the server process only, such as S3 credentials and endpoint.
    env: dict[str, str] = field(default_factory=dict)
    # Extra `cairn server` flags (Cairn only), such as timeouts.
    args: list[str] = field(default_factory=list)
    # Extra `mlflow server` flags (reference mode only), such as `--app-name basic-auth`.
    mlflow_args: list[str] = field(default_factory=list)
    # An open-file limit (soft and hard) for the server process, to test descriptor exhaustion.
    nofile: int | None = None
    # A port kept across restarts (a load balancer's configuration names it); a free one per
    # start when `None`.
    fixed_port: int | None = None
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path = field(init=False)
    starts: int = 0

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        common = ["--host", "127.0.0.1", "--port", str(self.port)]
        common += ["--backend-store-uri", self.backend_uri]
        if self.kind == "cairn":
            cairn = [str(cairn_binary()), "server", *common, "--data-dir", str(self.workdir / "data")]
            if self.artifacts_destination is not None:
                cairn += ["--artifacts-destination", self.artifacts_destination]
            return cairn + self.args
        return [
            str(mlflow_binary()),
            "server",
            *common,
            "--workers",
            "1",
            "--artifacts-destination",
            self.artifacts_destination or str(self.workdir / "artifacts"),
            *self.mlflow_args,
        ]

    def start(self) -> "Server":
        """Start the process and wait until `GET /health` answers 200."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("server already running")
        self.port = self.fixed_port or free_port()
        self.starts += 1
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        env.update(self.env)
        # The server must not inherit a tracking URI meant for the tests' client side.
        env.pop("MLFLOW_TRACKING_URI", None)
        log = open(self.log_path, "a", encoding="utf-8")
        log.write(f"\n==== start #{self.starts}: {' '.join(self.command())}\n")
        log.flush()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group, so that stopping `mlflow server` also stops the uvicorn
            # workers it spawns, and a Ctrl-C in the terminal does not race our own shutdown.
            start_new_session=True,
            preexec_fn=self._limit_descriptors if self.nofile else None,
        )
        log.close()
        self._wait_healthy()
        return self

    def _limit_descriptors(self) -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} server exited with {self.proc.returncode} during start-up:\n"
                    + self.log_tail()
                )
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{self.kind} server did not become healthy:\n" + self.log_tail())

    @property
    def pid(self) -> int:
        """The server's process id (for `mlflow server`, its launcher's)."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("server is not running")
        return self.proc.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> int | None:
        """Graceful stop (SIGTERM to the process group); escalate to SIGKILL after `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout=10)
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        """`kill -9`: no chance to flush, close or clean up."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass


def cairn_cli(*args: str, timeout: float = 120.0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a `cairn` subcommand (not the server) and capture its output; `env` adds variables."""
    return subprocess.run(
        [str(cairn_binary()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env} if env else None,
    )


def proc_status_kib(pid: int, field_name: str) -> int:
    """One `kB` field of `/proc/<pid>/status`, such as `VmRSS` (now) or `VmHWM` (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


def reset_peak_rss(pid: int) -> bool:
    """Reset the kernel's peak-RSS mark (`VmHWM`) of `pid` to its current RSS, so a later
    reading shows the peak of what happened since. False where the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class MotoServer:
    """moto's S3-protocol server on a free loopback port, from the test venv.

    moto keeps everything in memory and accepts any credentials; it is stopped at the end of
    the session and takes its data with it.
    """

    workdir: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    # The credentials and region every client (server under test, boto3 in the tests) uses.
    CREDENTIALS = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server_env(self) -> dict[str, str]:
        """Environment that points an S3 client (Cairn or MLflow) at this server."""
        return {**self.CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": self.endpoint, "AWS_ENDPOINT_URL": self.endpoint}

    def start(self) -> "MotoServer":
        venv = os.environ.get("CAIRN_TEST_VENV")
        python = str(Path(venv) / "bin" / "python") if venv else sys.executable
        self.port = free_port()
        log = open(self.workdir / "moto.log", "a", encoding="utf-8")
        self.proc = subprocess.Popen(
            [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto exited with {self.proc.returncode}; is moto[server] installed?")
            try:
                requests.get(self.endpoint + "/moto-api/", timeout=2)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto did not start")

    def client(self):
        """A boto3 S3 client for this server (boto3 comes with moto)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def create_bucket(self) -> str:
        name = "cairn-e2e-" + uuid.uuid4().hex[:12]
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self.proc = None


def haproxy_binary() -> Path:
    """Debian's HAProxy (`scripts/test.sh` installs it)."""
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if not found:
        raise RuntimeError("haproxy is not installed (apt-get install haproxy; scripts/test.sh does)")
    return Path(found)


@dataclass
class LoadBalancer:
    """A real HAProxy in front of `backends` (ports on 127.0.0.1), configured from
    `deploy/haproxy/cairn.cfg` with the addresses filled in, so the test runs the configuration
    the repository documents."""

    workdir: Path
    backends: list[int]
    port: int = 0
    proc: subprocess.Popen | None = None
    # A PEM file holding a certificate and its key: HAProxy then terminates TLS, as in front of a
    # server reached over HTTPS, and `ca` is the certificate clients must trust.
    tls_pem: Path | None = None
    ca: Path | None = None

    TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "cairn.cfg"

    @property
    def url(self) -> str:
        # Over TLS the name the certificate was made for.
        return f"https://localhost:{self.port}" if self.tls_pem else f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        text = self.TEMPLATE.read_text(encoding="utf-8")
        tls = f" ssl crt {self.tls_pem}" if self.tls_pem else ""
        text = text.replace("bind 127.0.0.1:5000", f"bind 127.0.0.1:{self.port}{tls}")
        servers = "".join(
            f"    server cairn{i + 1} 127.0.0.1:{port} check\n" for i, port in enumerate(self.backends)
        )
        lines = [line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("server cairn")]
        marker = next(i for i, line in enumerate(lines) if line.startswith("backend cairn"))
        # The servers go at the end of the backend section, which is the file's last.
        return "".join(lines[: marker + 1]) + "".join(lines[marker + 1 :]).rstrip("\n") + "\n" + servers

    def start(self) -> "LoadBalancer":
        self.port = free_port()
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(self.config(), encoding="utf-8")
        check = subprocess.run([str(haproxy_binary()), "-c", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refused its configuration:\n{check.stdout}{check.stderr}")
        log = open(self.workdir / "haproxy.log", "a", encoding="utf-8")
        self.proc = subprocess.Popen(
            [str(haproxy_binary()), "-db", "-f", str(cfg)],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/ready", timeout=2, verify=str(self.ca) if self.ca else True).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("haproxy did not start forwarding")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
