"""`cairn run` and `cairn reproduce` end to end, Cairn-only.

A small git repository made here holds a deterministic NumPy training script that logs through
the real `mlflow` client and seeds with `cairn.seed_everything`. It runs in its own venv (the
"original environment": mlflow-skinny, NumPy and the cairn-tracking wheel built from ./python),
launched by `cairn run` with a dirty tree and a dataset file as a declared input. Then `cairn
reproduce` rebuilds everything from the record alone: a fresh clone at the commit with the patch
applied, a fresh venv with the recorded packages (cold, then from the cache), the input checked
against its digest, and a verdict.

Installs are offline after the first run: third-party wheels are downloaded once into
`target/reproduce-wheels/` (pip's configured index), the original venv is kept under
`target/reproduce-test/` keyed by what it holds, and every `cairn reproduce` gets
`--find-links ... --no-index`. The reproduction's environment cache is fresh per session, so the
cold path is exercised every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from mlflow.tracking import MlflowClient

from servers import cairn_binary

pytestmark = pytest.mark.cairn_only

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / "target" / "reproduce-wheels"
PINS = ["mlflow-skinny==3.17.2", "numpy==2.4.6", "setuptools==80.9.0"]

TRAIN = """\
import sys

import mlflow
import numpy as np

import cairn

{seed}  # before start_run: the run joined by the script still records it
with mlflow.start_run():
    data = np.loadtxt(sys.argv[1], delimiter=",")
    w = np.random.normal(size=data.shape[1])
    mlflow.log_param("rows", data.shape[0])
    for step in range(3):
        loss = float(((data @ w) ** 2).mean()) / (step + 1)
        mlflow.log_metric("loss", loss, step=step)
    mlflow.log_metric("w0", float(w[0]))
    print("final loss", loss)
    print("a warning on stderr", file=sys.stderr)
"""


def pip(python: Path, *args: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet", *args], check=True, timeout=900
    )


def base_python() -> str:
    return shutil.which("python3.11") or sys.executable


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Third-party wheels (downloaded once, kept under target/) and this checkout's
    cairn-tracking wheel (built per session, so it is always the current source)."""
    stamp = WHEELS / ".pins"
    if not stamp.is_file() or stamp.read_text() != "\n".join(PINS):
        WHEELS.mkdir(parents=True, exist_ok=True)
        pip(Path(sys.executable), "download", "--dest", str(WHEELS), *PINS)
        stamp.write_text("\n".join(PINS))
    own = tmp_path_factory.mktemp("cairn-wheel")
    pip(Path(sys.executable), "wheel", "--no-deps", "--no-index", "--find-links", str(WHEELS), str(ROOT / "python"), "-w", str(own))
    return [WHEELS, own]


@pytest.fixture(scope="session")
def venv(wheels: list[Path]) -> Path:
    """The original run's environment, kept across sessions under the digest of what it holds."""
    own_wheel = next(wheels[1].glob("cairn_tracking-*.whl"))
    key = hashlib.sha256(("\n".join(PINS) + hashlib.sha256(own_wheel.read_bytes()).hexdigest()).encode()).hexdigest()[:16]
    root = ROOT / "target" / "reproduce-test" / f"venv-{key}"
    if not (root / ".complete").is_file():
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([base_python(), "-m", "venv", str(root)], check=True, timeout=300)
        python = root / "bin" / "python"
        pip(python, "install", "--no-index", "--find-links", str(WHEELS), *PINS[:2])
        pip(python, "install", "--no-deps", "--no-index", str(own_wheel))
        (root / ".complete").write_text(key)
    return root


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory):
    """The reproductions' environment cache: empty at the start of each session, and removed
    at its end (a venv is a few hundred megabytes; pytest keeps old temp folders)."""
    path = tmp_path_factory.mktemp("reproduce-cache")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def cairn_server(make_server):
    return make_server("sqlite")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def make_repo(path: Path, seeded: bool = True) -> Path:
    """A repository with the training script committed, then left dirty: the script edited and an
    untracked helper added."""
    path.mkdir(parents=True)
    git(path, "init", "-q")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "user.name", "Test")
    seed = "cairn.seed_everything(7)" if seeded else "pass  # no seed: every run differs;"
    (path / "train.py").write_text(TRAIN.format(seed=seed))
    git(path, "add", "train.py")
    git(path, "commit", "-qm", "training script")
    (path / "train.py").write_text((path / "train.py").read_text() + "# tuned after the commit\n")
    (path / "helper.py").write_text("SCALE = 1\n")
    return path


class Env:
    """Runs `cairn run` / `cairn reproduce` against one server with the original venv first on PATH."""

    def __init__(self, server, venv: Path, wheels: list[Path], cache: Path) -> None:
        self.server = server
        self.venv = venv
        self.wheels = wheels
        self.cache = cache
        self.client = MlflowClient(tracking_uri=server.url)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CAIRN_"))}
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '')}"
        env["MLFLOW_TRACKING_URI"] = self.server.url
        return {**env, **extra}

    def run(self, repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(cairn_binary()), "run", *args],
            cwd=repo, env=env or self.env(), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        )

    def reproduce(self, run_id: str, *args: str) -> subprocess.CompletedProcess:
        links = [a for w in self.wheels for a in ("--find-links", str(w))]
        return subprocess.run(
            [str(cairn_binary()), "reproduce", run_id, "--cache-dir", str(self.cache), "--no-index", *links, *args],
            env=self.env(), capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
        )

    def run_id(self, done: subprocess.CompletedProcess) -> str:
        for line in done.stderr.splitlines():
            if line.startswith("cairn: run "):
                return line.split()[2]
        raise AssertionError(f"no run id in cairn run's output:\n{done.stdout}\n{done.stderr}")

    def runs(self, experiment: str) -> list:
        exp = self.client.get_experiment_by_name(experiment)
        return [] if exp is None else self.client.search_runs([exp.experiment_id])

    def artifact(self, run_id: str, path: str) -> bytes:
        run = self.client.get_run(run_id)
        root = run.info.artifact_uri.removeprefix("mlflow-artifacts:")
        response = requests.get(f"{self.server.url}/api/2.0/mlflow-artifacts/artifacts{root}/{path}", timeout=30)
        response.raise_for_status()
        return response.content


@pytest.fixture(scope="session")
def env(cairn_server, venv, wheels, cache) -> Env:
    return Env(cairn_server, venv, wheels, cache)


@pytest.fixture(scope="session")
def original(env: Env, tmp_path_factory: pytest.TempPathFactory):
    """One seeded run of the dirty repository, with a dataset file outside it as its input."""
    base = tmp_path_factory.mktemp("original")
    repo = make_repo(base / "repo")
    data = base / "data" / "train.csv"
    data.parent.mkdir()
    data.write_text("1,2\n3,4\n5,6\n")
    done = env.run(repo, "--experiment", "reproduce-e2e", "--name", "seeded", "--input", str(data), "--",
                   "python", "train.py", str(data))
    assert done.returncode == 0, done.stderr
    return {"run_id": env.run_id(done), "repo": repo, "data": data, "done": done}


def test_cairn_run_records_code_environment_inputs_and_output(env: Env, original) -> None:
    run = env.client.get_run(original["run_id"])
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert json.loads(tags["cairn.run.command"]) == ["python", "train.py", str(original["data"])]
    assert tags["cairn.source.cwd"] == "."
    assert tags["mlflow.source.git.commit"] == git(original["repo"], "rev-parse", "HEAD").strip()
    assert tags["cairn.source.git.dirty"] == "true"
    patch = env.artifact(original["run_id"], "cairn/code/uncommitted.patch")
    assert hashlib.sha256(patch).hexdigest() == tags["cairn.source.git.diff_digest"]
    assert b"+# tuned after the commit" in patch and b"+++ b/helper.py" in patch
    # The environment comes from the package in the command's interpreter, as for fluent runs.
    packages = env.artifact(original["run_id"], "cairn/environment/packages.txt")
    assert hashlib.sha256(packages).hexdigest() == tags["cairn.environment.digest"]
    assert b"numpy==2.4.6" in packages and b"cairn-tracking==0.1.0" in packages
    assert tags["cairn.seed"] == "7"
    # The script's own mlflow calls landed in the launched run.
    assert run.data.params == {"rows": "3"} and "loss" in run.data.metrics
    assert b"final loss" in env.artifact(original["run_id"], "cairn/run/stdout.log")
    assert b"a warning on stderr" in env.artifact(original["run_id"], "cairn/run/stderr.log")
    assert "final loss" in original["done"].stdout
    # The input is a dataset version with its digest and location, used by the run.
    digest = hashlib.sha256(original["data"].read_bytes()).hexdigest()
    upstream = requests.get(
        f"{env.server.url}/api/cairn/v1/lineage/upstream", params={"node": f"run:{original['run_id']}", "depth": 1},
        timeout=30,
    ).json()
    ids = {n["id"] for n in upstream["nodes"]}
    assert f"dataset:train.csv@{digest}" in ids
    assert tags["cairn.code.node"] in ids and f"env:{tags['cairn.environment.digest']}" in ids


def test_exit_codes_and_signals_become_the_run_status(env: Env, tmp_path: Path) -> None:
    failed = env.run(tmp_path, "--experiment", "reproduce-e2e-status", "--", "python", "-c", "import sys; sys.exit(3)")
    assert failed.returncode == 3
    assert env.client.get_run(env.run_id(failed)).info.status == "FAILED"

    proc = subprocess.Popen(
        [str(cairn_binary()), "run", "--experiment", "reproduce-e2e-status", "--", "python", "-c",
         "import time; print('ready', flush=True); time.sleep(120)"],
        cwd=tmp_path, env=env.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # forwarded to the command, which dies of it
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - started < 30
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    run_id = next(line.split()[2] for line in stderr.splitlines() if line.startswith("cairn: run "))
    run = env.client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["cairn.run.signal"] == "SIGTERM"


def test_require_clean_refuses_a_dirty_tree(env: Env, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    done = env.run(repo, "--experiment", "reproduce-e2e-clean", "--require-clean", "--", "python", "train.py", "x")
    assert done.returncode != 0 and "uncommitted changes" in done.stderr
    assert env.runs("reproduce-e2e-clean") == []


def test_a_seeded_dirty_run_reproduces_cold_then_warm(env: Env, original) -> None:
    run_id = original["run_id"]
    plan = subprocess.run(
        [str(cairn_binary()), "reproduce", run_id, "--dry-run", "--json", "--cache-dir", str(env.cache)],
        env=env.env(), capture_output=True, text=True, timeout=120,
    )
    assert plan.returncode == 0, plan.stderr
    plan = json.loads(plan.stdout)
    assert plan["code"]["diff_digest"] == env.client.get_run(run_id).data.tags["cairn.source.git.diff_digest"]
    assert "numpy==2.4.6" in plan["environment"]["packages"] and plan["environment"]["cached"] is False
    assert plan["command"] == ["python", "train.py", str(original["data"])]
    runs_before = len(env.runs("reproduce-e2e"))
    assert len(env.runs("reproduce-e2e")) == runs_before  # a dry run creates nothing

    timings = {}
    for attempt in ("cold", "warm"):
        started = time.monotonic()
        done = env.reproduce(run_id, "--json")
        timings[attempt] = time.monotonic() - started
        assert done.returncode == 0, done.stdout + done.stderr
        verdict = json.loads(done.stdout)
        assert verdict["verdict"] == "reproduced"
        assert verdict["environment_cached"] is (attempt == "warm")
        assert all(m["ok"] and m["abs_diff"] == 0.0 for m in verdict["metrics"])
        assert {m["key"] for m in verdict["metrics"]} == {"loss", "w0"}
        # The whole curve is compared, not only the final value.
        history = {m["key"]: m["history"] for m in verdict["metrics"]}
        assert history == {"loss": {"same": True, "values": 3}, "w0": {"same": True, "values": 1}}
        assert all(c["ok"] for c in verdict["checks"])
        new = env.client.get_run(verdict["reproduction_run_id"])
        assert new.data.tags["cairn.reproduction_of"] == run_id
        assert new.data.tags["cairn.reproduction.verdict"] == "reproduced"
        assert new.data.tags["cairn.environment.digest"] == env.client.get_run(run_id).data.tags["cairn.environment.digest"]
        stored = json.loads(env.artifact(new.info.run_id, "cairn/reproduction/verdict.json"))
        assert stored["reproduced"] is True
        upstream = requests.get(
            f"{env.server.url}/api/cairn/v1/lineage/upstream", params={"node": f"run:{new.info.run_id}", "depth": 1},
            timeout=30,
        ).json()
        assert {"source": f"run:{new.info.run_id}", "kind": "was_informed_by", "target": f"run:{run_id}"} in [
            {k: e[k] for k in ("source", "kind", "target")} for e in upstream["edges"]
        ]
    print(f"\nreproduction: cold {timings['cold']:.1f} s, warm {timings['warm']:.1f} s")
    assert timings["warm"] < timings["cold"]


def test_an_unseeded_run_is_not_reproduced(env: Env, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", seeded=False)
    data = tmp_path / "train.csv"
    data.write_text("1,2\n3,4\n5,6\n")
    done = env.run(repo, "--experiment", "reproduce-e2e", "--input", str(data), "--", "python", "train.py", str(data))
    assert done.returncode == 0, done.stderr
    result = env.reproduce(env.run_id(done))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not reproduced" in result.stdout
    differing = [line.split()[0] for line in result.stdout.splitlines() if line.rstrip().endswith("DIFFERS")]
    assert set(differing) == {"loss", "w0"}, result.stdout
    # Unseeded weights differ from the first step on, and the verdict says where.
    assert "loss at step 0: " in result.stdout, result.stdout
    assert "param rows: same (3)" in result.stdout


def test_an_edited_dataset_stops_the_reproduction(env: Env, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    data = tmp_path / "train.csv"
    data.write_text("1,2\n3,4\n5,6\n")
    done = env.run(repo, "--experiment", "reproduce-e2e-edited", "--input", str(data), "--", "python", "train.py", str(data))
    assert done.returncode == 0, done.stderr
    recorded = hashlib.sha256(data.read_bytes()).hexdigest()
    data.write_text("1,2\n3,4\n5,7\n")
    found = hashlib.sha256(data.read_bytes()).hexdigest()
    result = env.reproduce(env.run_id(done))
    assert result.returncode == 2
    assert f"dataset:train.csv@{recorded}" in result.stderr
    assert f"recorded digest {recorded}, found {found}" in result.stderr
    assert len(env.runs("reproduce-e2e-edited")) == 1  # nothing half-created


def test_an_unknown_commit_is_refused(env: Env, original, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    git(other, "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "unrelated")
    before = len(env.runs("reproduce-e2e"))
    result = env.reproduce(original["run_id"], "--repo", str(other))
    assert result.returncode == 2
    commit = env.client.get_run(original["run_id"]).data.tags["mlflow.source.git.commit"]
    assert f"commit {commit} is not in {other}" in result.stderr
    assert len(env.runs("reproduce-e2e")) == before


def test_a_diff_that_no_longer_applies_is_refused(env: Env, original) -> None:
    # The record of a run whose patch was made against another tree: everything else is the
    # original's, the patch (with a matching digest) edits a line the commit does not have.
    source = env.client.get_run(original["run_id"])
    patch = (
        b"diff --git a/train.py b/train.py\n--- a/train.py\n+++ b/train.py\n@@ -1,1 +1,1 @@\n"
        b"-import os\n+import os, re\n"
    )
    tags = dict(source.data.tags)
    tags["cairn.source.git.diff_digest"] = hashlib.sha256(patch).hexdigest()
    tags.pop("cairn.run.inputs")
    tags.pop("mlflow.runName", None)
    exp = env.client.create_experiment("reproduce-e2e-patch")
    crafted = env.client.create_run(exp, tags=tags)
    run_id = crafted.info.run_id
    env.client.log_text(run_id, patch.decode(), "cairn/code/uncommitted.patch")
    env.client.log_text(run_id, env.artifact(source.info.run_id, "cairn/environment/packages.txt").decode(),
                        "cairn/environment/packages.txt")
    env.client.set_terminated(run_id)
    result = env.reproduce(run_id)
    assert result.returncode == 2
    assert f"do not apply to commit {tags['mlflow.source.git.commit']}" in result.stderr
    assert "train.py" in result.stderr
    assert len(env.client.search_runs([exp])) == 1


def test_an_unavailable_package_version_is_named(env: Env, tmp_path: Path) -> None:
    # A distribution the index does not have, visible to the original interpreter through
    # PYTHONPATH (which is not an allow-listed variable, so the reproduction does not get it).
    extra = tmp_path / "site"
    (extra / "ghost_pkg-0.0.1.dist-info").mkdir(parents=True)
    (extra / "ghost_pkg-0.0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: ghost-pkg\nVersion: 0.0.1\n")
    repo = make_repo(tmp_path / "repo")
    data = tmp_path / "train.csv"
    data.write_text("1,2\n3,4\n")
    done = env.run(repo, "--experiment", "reproduce-e2e-ghost", "--", "python", "train.py", str(data),
                   env=env.env(PYTHONPATH=str(extra)))
    assert done.returncode == 0, done.stderr
    run_id = env.run_id(done)
    digest = env.client.get_run(run_id).data.tags["cairn.environment.digest"]
    result = env.reproduce(run_id)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "packages that cannot be had: ghost-pkg==0.0.1" in result.stderr
    assert len(env.runs("reproduce-e2e-ghost")) == 1
    assert not (env.cache / "envs" / digest).exists()  # no half-built environment is kept


# --- the terminal and HTTPS -----------------------------------------------------------------


def on_a_terminal(env: Env, cwd: Path, shell_input: list[tuple[float, str]], timeout: float = 60) -> str:
    """Runs an interactive bash on a pseudo-terminal (util-linux `script`), types `shell_input`
    into it (each after its delay, in seconds) and returns what the terminal showed."""
    proc = subprocess.Popen(
        ["script", "-qec", "bash --norc --noprofile -i", "/dev/null"],
        cwd=cwd, env={**env.env(), "PS1": "$ "}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    for delay, text in shell_input:
        time.sleep(delay)
        proc.stdin.write(text.encode())
        proc.stdin.flush()
    out, _ = proc.communicate(timeout=timeout)
    return out.decode(errors="replace").replace("\r", "")


def test_a_command_on_a_terminal_reads_it_and_gets_ctrl_c_once(env: Env, tmp_path: Path) -> None:
    # The command runs in a process group of its own; unless that group is lent the terminal's
    # foreground, reading the terminal stops it (SIGTTIN) and the run hangs.
    (tmp_path / "ask.py").write_text(
        "import signal, time\n"
        "seen = []\n"
        "signal.signal(signal.SIGINT, lambda *a: seen.append(1) or print('interrupted', flush=True))\n"
        "name = input('name? ')\n"
        "print('reversed:', name[::-1], flush=True)\n"
        "time.sleep(2)\n"
        "print('interrupts:', len(seen), flush=True)\n"
    )
    shown = on_a_terminal(env, tmp_path, [
        (1, f"{cairn_binary()} run --experiment reproduce-e2e-tty -- python ask.py; echo exit=$?\n"),
        (4, "stressed\n"),
        (0.5, "\x03"),  # Ctrl-C, typed while the command sleeps
        (4, "exit\n"),
    ])
    assert "reversed: desserts" in shown, shown
    # Ctrl-C reached the command once, from the terminal; `cairn run` did not pass on a second.
    assert "interrupts: 1" in shown and "exit=0" in shown, shown
    run_id = next(line.split()[2] for line in shown.splitlines() if line.startswith("cairn: run "))
    assert env.client.get_run(run_id).info.status == "FINISHED"
    assert b"reversed: desserts" in env.artifact(run_id, "cairn/run/stdout.log")


def test_ctrl_z_stops_the_run_and_fg_resumes_it(env: Env, tmp_path: Path) -> None:
    (tmp_path / "count.py").write_text(
        "import time\nfor i in range(40):\n    print('tick', i, flush=True)\n    time.sleep(0.2)\n"
    )
    shown = on_a_terminal(env, tmp_path, [
        (1, f"{cairn_binary()} run --experiment reproduce-e2e-tty -- python count.py\n"),
        (3, "\x1a"),  # Ctrl-Z: the command stops, and so does `cairn run`, so the shell is back
        (1.5, "jobs\n"),
        (0.5, "fg\n"),
        (14, "exit\n"),
    ], timeout=90)
    assert "Stopped" in shown, shown
    stopped_at = shown.index("Stopped")
    # The shell answered `jobs` while the job was stopped, then `fg` let it finish every tick.
    assert "tick 39" in shown[stopped_at:] and " FINISHED" in shown[stopped_at:], shown
    run_id = next(line.split()[2] for line in shown.splitlines() if line.startswith("cairn: run "))
    assert env.client.get_run(run_id).info.status == "FINISHED"
    log = env.artifact(run_id, "cairn/run/stdout.log")
    assert all(f"tick {i}\n".encode() in log for i in range(40))


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A private CA and a certificate it signed for `localhost`: the server's certificate and key
    in one PEM for HAProxy, and the CA's certificate for clients to trust."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=cairn test CA",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")
    (tmp_path / "server.ext").write_text("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "server.ext", "-out", "server.pem")
    both = tmp_path / "haproxy.pem"
    both.write_bytes((tmp_path / "server.pem").read_bytes() + (tmp_path / "server.key").read_bytes())
    return both, tmp_path / "ca.pem"


def test_cairn_run_reaches_a_server_over_https(env: Env, tmp_path: Path) -> None:
    from servers import LoadBalancer

    pem, ca = self_signed(tmp_path)
    port = int(env.server.url.rsplit(":", 1)[1])
    proxy = LoadBalancer(tmp_path, [port], tls_pem=pem, ca=ca).start()
    try:
        script = tmp_path / "log.py"
        script.write_text("import mlflow\nmlflow.log_metric('over_tls', 1.5)\nprint('logged', flush=True)\n")
        # Untrusted certificate: refused with a clear error, before any command runs.
        refused = env.run(tmp_path, "--experiment", "reproduce-e2e-tls", "--", "python", str(script),
                          env=env.env(MLFLOW_TRACKING_URI=proxy.url))
        assert refused.returncode != 0 and "logged" not in refused.stdout
        assert "cannot reach" in refused.stderr and proxy.url in refused.stderr, refused.stderr
        # Trusted the way the mlflow client is told to trust it, which the script inherits.
        done = env.run(tmp_path, "--experiment", "reproduce-e2e-tls", "--", "python", str(script),
                       env=env.env(MLFLOW_TRACKING_URI=proxy.url, MLFLOW_TRACKING_SERVER_CERT_PATH=str(ca)))
        assert done.returncode == 0, done.stderr
        run = env.client.get_run(env.run_id(done))
        assert run.info.status == "FINISHED" and run.data.metrics["over_tls"] == 1.5
        assert b"logged" in env.artifact(run.info.run_id, "cairn/run/stdout.log")
        # A certificate path that holds no certificate is named, not ignored.
        (tmp_path / "empty.pem").write_text("not a certificate\n")
        bad = env.run(tmp_path, "--experiment", "reproduce-e2e-tls", "--", "python", str(script),
                      env=env.env(MLFLOW_TRACKING_URI=proxy.url, MLFLOW_TRACKING_SERVER_CERT_PATH=str(tmp_path / "empty.pem")))
        assert bad.returncode != 0 and "MLFLOW_TRACKING_SERVER_CERT_PATH" in bad.stderr, bad.stderr
    finally:
        proxy.stop()
