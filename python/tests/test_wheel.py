"""`pip install` gives a data scientist the server: the `cairn-server-bin` wheel built from
source, installed into a fresh venv, puts `cairn` on its PATH, and the installed `cairn server`
answers the real mlflow client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from conftest import REPO_ROOT, Server, cairn_binary


def test_the_server_wheel_installs_a_working_cairn(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         str(REPO_ROOT / "python" / "server-wheel"), "-w", str(wheels)],
        check=True, timeout=600, env={**os.environ, "CAIRN_BIN": str(cairn_binary())},
    )
    (built,) = wheels.glob("cairn_server_bin-*.whl")
    assert "-py3-none-linux_" in built.name, built.name
    # auditwheel checks which glibc symbol versions and libraries the binary needs and tags the
    # wheel with the manylinux policy those allow, which is what pip on another distribution
    # looks for.
    bin_dir = str(Path(sys.executable).parent)
    subprocess.run(
        [sys.executable, "-m", "auditwheel", "repair", "-w", str(wheels / "manylinux"), str(built)],
        check=True, timeout=600, env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
    )
    (wheel,) = (wheels / "manylinux").glob("cairn_server_bin-*.whl")
    assert "-py3-none-manylinux_2_" in wheel.name, wheel.name

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-index", "--disable-pip-version-check", str(wheel)],
        check=True, timeout=300,
    )
    installed = venv / "bin" / "cairn"
    assert installed.is_file()
    version = subprocess.run([str(installed), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "cairn" in version.stdout

    server = Server(tmp_path / "server", binary=installed).start()
    try:
        mlflow.set_tracking_uri(server.url)
        mlflow.set_experiment("from-the-wheel")
        with mlflow.start_run() as run:
            mlflow.log_metric("loss", 0.25, step=3)
        got = MlflowClient().get_run(run.info.run_id)
        assert got.data.metrics == {"loss": 0.25} and got.info.status == "FINISHED"
    finally:
        server.stop()
