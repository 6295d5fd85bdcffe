"""The environment a run executes in: interpreter, operating system, hardware, the resolved
package list, lock files, and allow-listed environment variables.

The environment's identity (its digest, the key of its lineage node) is the SHA-256 of
`packages.txt`: the interpreter and platform, the digests of any lock files, then one
`name==version` line per installed distribution, sorted. Hardware (CPU, memory, GPUs) is
recorded on the run but is not part of the identity, so the same software on two machines is one
environment, as it is for `pip freeze`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cairn.capture._proc import run

LOCK_FILES = ("uv.lock", "poetry.lock", "Pipfile.lock")
REQUIREMENTS_GLOB = "requirements*.txt"
MAX_LOCK_FILE_BYTES = 16 * 1024 * 1024

# Variables that change what a run computes or how fast, and never hold secrets.
ENV_ALLOW_LIST = (
    "PYTHONHASHSEED",
    "CUDA_VISIBLE_DEVICES",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_LAUNCH_BLOCKING",
    "NVIDIA_TF32_OVERRIDE",
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "TF_ENABLE_ONEDNN_OPTS",
    "PYTORCH_CUDA_ALLOC_CONF",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
    "LANG",
    "LC_ALL",
    "TZ",
    "CONDA_DEFAULT_ENV",
    "SLURM_JOB_ID",
)
# Names that are refused even when a user adds them to the allow-list.
_SECRET_NAME = re.compile(r"(?i)(token|secret|passw|key|credential|auth|cookie|session)")


@dataclass
class EnvironmentInfo:
    """Everything captured about the environment; `packages_txt` defines its identity."""

    python: str
    python_implementation: str
    os: str
    machine: str
    cpu_model: str | None
    cpu_count: int | None
    memory_bytes: int | None
    gpus: list[dict[str, str]]
    cuda_version: str | None
    packages: dict[str, str]
    lock_files: dict[str, tuple[Path, str]] = field(default_factory=dict)

    @cached_property
    def packages_txt(self) -> bytes:
        lines = [
            f"# python: {self.python_implementation} {self.python}",
            f"# platform: {platform.system()} {self.machine}",
        ]
        lines += [f"# {name}: sha256:{digest}" for name, (_, digest) in sorted(self.lock_files.items())]
        lines += [f"{name}=={version}" for name, version in sorted(self.packages.items())]
        return ("\n".join(lines) + "\n").encode()

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.packages_txt).hexdigest()

    def node_attributes(self) -> dict[str, Any]:
        """What the environment's lineage node records: only what its digest covers."""
        return {
            "python": f"{self.python_implementation} {self.python}",
            "platform": f"{platform.system()} {self.machine}",
            "packages": dict(sorted(self.packages.items())),
            "lock_files": {name: digest for name, (_, digest) in sorted(self.lock_files.items())},
        }

    def describe(self) -> dict[str, Any]:
        """The full description, kept as `environment.json` beside the package list."""
        return {
            **self.node_attributes(),
            "os": self.os,
            "machine": self.machine,
            "cpu_model": self.cpu_model,
            "cpu_count": self.cpu_count,
            "memory_bytes": self.memory_bytes,
            "gpus": self.gpus,
            "cuda_version": self.cuda_version,
            "digest": self.digest,
        }


def normalize_name(name: str) -> str:
    """A distribution name in its canonical form (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_packages() -> dict[str, str]:
    """Every distribution importable in this interpreter, by canonical name; where a name is
    installed twice, the one found first on `sys.path` is the one Python imports."""
    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.name
        if name:
            packages.setdefault(normalize_name(name), dist.version)
    return packages


def lock_files(root: Path) -> dict[str, tuple[Path, str]]:
    """Lock and requirements files at `root`, with their SHA-256."""
    found: dict[str, tuple[Path, str]] = {}
    candidates = [root / n for n in LOCK_FILES] + sorted(root.glob(REQUIREMENTS_GLOB))
    for path in candidates:
        if path.is_file() and path.stat().st_size <= MAX_LOCK_FILE_BYTES:
            found[path.name] = (path, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        out = run(["sysctl", "-n", "machdep.cpu.brand_string"], timeout=2)
        if out:
            return out.strip()
    return platform.processor() or None


def memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def gpus() -> tuple[list[dict[str, str]], str | None]:
    """GPUs from `nvidia-smi` (name, memory, driver) and the CUDA version, if it is installed."""
    if shutil.which("nvidia-smi") is None:
        return [], None
    out = run(
        ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
        timeout=5,
    )
    found = []
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            found.append({"name": parts[0], "memory": parts[1], "driver": parts[2]})
    header = run(["nvidia-smi"], timeout=5) or ""
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", header)
    return found, cuda.group(1) if cuda else None


def os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip().strip(chr(34))} ({platform.system()} {platform.release()})"
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


def capture(root: Path) -> EnvironmentInfo:
    """The environment now, with lock files looked for at `root` (the repository or cwd)."""
    gpu_list, cuda = gpus()
    return EnvironmentInfo(
        python=platform.python_version(),
        python_implementation=platform.python_implementation(),
        os=os_name(),
        machine=platform.machine(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count(),
        memory_bytes=memory_bytes(),
        gpus=gpu_list,
        cuda_version=cuda,
        packages=installed_packages(),
        lock_files=lock_files(root),
    )


def allowed_variables(extra: str | None = None) -> dict[str, str]:
    """The allow-listed environment variables that are set. `extra` (from
    `CAIRN_CAPTURE_ENV_VARS`, comma-separated) adds names, except ones that look like secrets."""
    names = list(ENV_ALLOW_LIST)
    for name in (extra or "").split(","):
        name = name.strip()
        if name and not _SECRET_NAME.search(name):
            names.append(name)
    return {n: os.environ[n] for n in names if n in os.environ}
