"""One process's capture: what `start_run` records, computed as cheaply as the run allows.

The environment does not change while a process runs, so it is captured once, in a background
thread started when MLflow loads the plugin (at `import mlflow`), and reused by every run. The
code is read again at every run (a notebook edits files between runs) with three git
subprocesses. Lineage nodes are registered once per process per key.

The MLflow context provider runs before the run exists, so it can only return tags. The files
the tags point at (the patch, the package list) wait here, keyed by their digests, until
`CairnRestStore.create_run` has the run and uploads them (`take_files`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from cairn.capture import code as code_capture
from cairn.capture import environment as env_capture
from cairn.capture import seeds

log = logging.getLogger(__name__)

TAG_ERROR = "cairn.capture.error"
TAG_ENV_DIGEST = "cairn.environment.digest"
TAG_DIFF_DIGEST = "cairn.source.git.diff_digest"
CODE_DIR = "cairn/code"
ENV_DIR = "cairn/environment"
PATCH_NAME = "uncommitted.patch"
# MLflow's limit on a tag value.
MAX_TAG_VALUE = 8000


@dataclass(frozen=True)
class PendingFile:
    """A file to upload into a run once it exists."""

    artifact_dir: str
    name: str
    data: bytes


_env_lock = threading.Lock()
_env: env_capture.EnvironmentInfo | None = None
_env_error: BaseException | None = None
_env_thread: threading.Thread | None = None

_files_lock = threading.Lock()
_pending: dict[str, list[PendingFile]] = {}
_registered: set[str] = set()


def _lock_root() -> Path:
    found = code_capture._repository(os.getcwd())
    return Path(found[0]) if found else Path.cwd()


def _capture_environment() -> None:
    global _env, _env_error
    try:
        info = env_capture.capture(_lock_root())
    except BaseException as e:  # noqa: BLE001 - reported on the run, never raised
        _env_error = e
        return
    _env = info


def prewarm() -> None:
    """Starts capturing the environment in the background (idempotent)."""
    global _env_thread
    with _env_lock:
        if _env_thread is None and _env is None:
            _env_thread = threading.Thread(target=_capture_environment, name="cairn-capture", daemon=True)
            _env_thread.start()


def environment() -> env_capture.EnvironmentInfo:
    """The process's environment, waiting for the background capture if it is still running."""
    prewarm()
    thread = _env_thread
    if thread is not None:
        thread.join()
    if _env is None:
        raise RuntimeError(f"environment capture failed: {_env_error}")
    return _env


def disabled() -> bool:
    return os.environ.get("CAIRN_CAPTURE", "").lower() in ("0", "false", "off")


def capture_tags() -> dict[str, str]:
    """The tags for a run starting now. Never raises: what fails becomes a warning and a
    `cairn.capture.error` tag, and the rest is still recorded."""
    if disabled():
        return {}
    tags: dict[str, str] = {}
    errors: list[str] = []
    nodes: dict[str, tuple[str, dict[str, object]]] = {}
    for part in (_code_tags, _environment_tags, _seed_tags):
        try:
            tags.update(part(nodes))
        except Exception as e:  # noqa: BLE001 - capture never fails a run
            errors.append(f"{part.__name__.strip('_').removesuffix('_tags')}: {type(e).__name__}: {e}")
    try:
        _register_nodes(nodes)
    except Exception as e:  # noqa: BLE001
        errors.append(f"lineage: {type(e).__name__}: {e}")
    if errors:
        message = "; ".join(errors)
        warnings.warn(f"Cairn capture incomplete: {message}", stacklevel=3)
        tags[TAG_ERROR] = message[:MAX_TAG_VALUE]
    return {k: v[:MAX_TAG_VALUE] for k, v in tags.items()}


def _code_tags(nodes: dict[str, tuple[str, dict[str, object]]]) -> dict[str, str]:
    info = code_capture.git_info()
    argv, cwd = code_capture.entry_point(info.root if info else None)
    tags = {
        "cairn.source.entry_point": json.dumps(argv),
        "cairn.source.cwd": cwd,
    }
    if info is None:
        tags["cairn.source.git"] = "none"
        return tags
    tags.update(
        {
            "mlflow.source.git.commit": info.commit,
            "mlflow.source.git.repoURL": info.repository,
            "cairn.source.git.dirty": str(info.dirty).lower(),
            "cairn.code.node": f"code:{info.node_key}",
        }
    )
    if info.branch:
        tags["mlflow.source.git.branch"] = info.branch
    if info.diff_digest:
        tags[TAG_DIFF_DIGEST] = info.diff_digest
        tags["cairn.source.git.diff_artifact"] = f"{CODE_DIR}/{PATCH_NAME}"
        _remember(info.diff_digest, [PendingFile(CODE_DIR, PATCH_NAME, info.patch)])
    if info.truncated:
        tags["cairn.source.git.diff_truncated"] = "true"
    if info.skipped:
        tags["cairn.source.git.diff_skipped"] = json.dumps(info.skipped[:50])
    nodes["code"] = (info.node_key, _code_node(info))
    return tags


def _environment_tags(nodes: dict[str, tuple[str, dict[str, object]]]) -> dict[str, str]:
    env = environment()
    digest = env.digest
    tags = {
        TAG_ENV_DIGEST: digest,
        "cairn.environment.node": f"env:{digest}",
        "cairn.environment.artifact": f"{ENV_DIR}/packages.txt",
        "cairn.environment.python": f"{env.python_implementation} {env.python}",
        "cairn.environment.os": env.os,
        "cairn.environment.machine": env.machine,
        "cairn.environment.cpu": env.cpu_model or "unknown",
        "cairn.environment.cpu_count": str(env.cpu_count or "unknown"),
        "cairn.environment.memory_bytes": str(env.memory_bytes or "unknown"),
        "cairn.environment.gpus": json.dumps(env.gpus) if env.gpus else "none",
    }
    if env.cuda_version:
        tags["cairn.environment.cuda"] = env.cuda_version
    for name, value in env_capture.allowed_variables(os.environ.get("CAIRN_CAPTURE_ENV_VARS")).items():
        tags[f"cairn.env.{name}"] = value
    with _files_lock:
        known = digest in _pending
    if not known:  # the same for every run of the process: built once
        files = [
            PendingFile(ENV_DIR, "packages.txt", env.packages_txt),
            PendingFile(ENV_DIR, "environment.json", json.dumps(env.describe(), indent=2).encode()),
        ]
        for name, (path, _) in sorted(env.lock_files.items()):
            try:
                files.append(PendingFile(ENV_DIR, name, path.read_bytes()))
            except OSError as e:
                log.warning("could not read %s: %s", path, e)
        _remember(digest, files)
    nodes["env"] = (digest, _env_node(env))
    return tags


def environment_tags(nodes: dict[str, tuple[str, dict[str, object]]]) -> dict[str, str]:
    """The environment's tags alone (and its node into `nodes`, its files kept for
    `take_files`), for a launcher that records the code itself (`cairn.capture.record`)."""
    return {k: v[:MAX_TAG_VALUE] for k, v in _environment_tags(nodes).items()}


def _seed_tags(nodes: dict[str, tuple[str, dict[str, object]]]) -> dict[str, str]:
    return {"cairn.seed.pythonhashseed": seeds.STARTUP_HASH_SEED, **seeds.seed_tags()}


def _code_node(info: code_capture.CodeInfo) -> dict[str, object]:
    # Only what the key determines: registering the same key again must give the same content.
    return {
        "label": f"{info.repository}@{info.commit[:12]}" + (" (dirty)" if info.dirty else ""),
        "digest": info.commit,
        "attributes": {"repository": info.repository, "commit": info.commit, "diff_digest": info.diff_digest},
    }


def _env_node(env: env_capture.EnvironmentInfo) -> dict[str, object]:
    return {
        "label": f"{env.python_implementation} {env.python}, {len(env.packages)} packages",
        "digest": env.digest,
        "attributes": env.node_attributes(),
    }


def _register_nodes(nodes: dict[str, tuple[str, dict[str, object]]]) -> None:
    """Registers the run's code and environment nodes with their content, once per process."""
    from cairn.mlflow_plugin import target

    if not nodes:
        return
    client = target.cairn_client()
    if client is None:
        return  # not a Cairn server: the tags alone are what MLflow keeps
    for kind, (key, body) in nodes.items():
        ref = f"{kind}:{key}"
        with _files_lock:
            if ref in _registered:
                continue
        client.register_node(ref, **body)  # type: ignore[arg-type]
        with _files_lock:
            _registered.add(ref)


def _remember(digest: str, files: list[PendingFile]) -> None:
    with _files_lock:
        _pending[digest] = files


def take_files(tags: dict[str, str]) -> list[PendingFile]:
    """The files the capture tags of a just-created run point at (copies stay for later runs
    with the same digests)."""
    out: list[PendingFile] = []
    with _files_lock:
        for tag in (TAG_DIFF_DIGEST, TAG_ENV_DIGEST):
            digest = tags.get(tag)
            if digest and digest in _pending:
                out.extend(_pending[digest])
    return out
