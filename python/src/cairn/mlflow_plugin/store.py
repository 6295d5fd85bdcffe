"""The `mlflow.tracking_store` plugin for `http` and `https`: MLflow's own `RestStore`, plus the
upload of the files Cairn's capture tags point at (the uncommitted patch, the package list, lock
files) right after `create_run`, which is the first moment the run exists.

The upload runs on a background thread so that `start_run` does not wait for it (three HTTP
requests would cost more than the capture itself); at interpreter exit, pending uploads are
waited for (up to `EXIT_WAIT_SECS`), so a short script still gets its files.

Everything else is MLflow's store unchanged, so this works against any MLflow-compatible server;
an upload that fails becomes a warning and a `cairn.capture.error` tag, never a failed run.
"""

from __future__ import annotations

import atexit
import queue
import tempfile
import threading
import warnings
from functools import partial
from pathlib import Path
from typing import Any

from mlflow.entities import RunTag
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.tracking.rest_store import RestStore
from mlflow.utils.credentials import get_default_host_creds

from cairn.capture import session


EXIT_WAIT_SECS = 30.0


class _Uploader:
    """One worker thread taking upload jobs in order."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[CairnRestStore, Any, list[session.PendingFile]]] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def submit(self, store: "CairnRestStore", run: Any, files: list[session.PendingFile]) -> None:
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._work, name="cairn-upload", daemon=True)
                self.thread.start()
                atexit.register(self.wait)
        self.jobs.put((store, run, files))

    def _work(self) -> None:
        while True:
            store, run, files = self.jobs.get()
            try:
                store.upload_capture(run, files)
            finally:
                self.jobs.task_done()

    def wait(self, timeout: float = EXIT_WAIT_SECS) -> bool:
        """Waits until every submitted upload finished; `True` if they did in time."""
        done = threading.Event()

        def join() -> None:
            self.jobs.join()
            done.set()

        threading.Thread(target=join, daemon=True).start()
        return done.wait(timeout)


uploader = _Uploader()


class CairnRestStore(RestStore):  # type: ignore[misc]
    """`RestStore` that completes Cairn's capture of each run it creates."""

    def __init__(self, store_uri: str) -> None:
        super().__init__(partial(get_default_host_creds, store_uri))
        self.store_uri = store_uri

    def create_run(self, experiment_id: Any, user_id: Any, start_time: Any, tags: Any, run_name: Any) -> Any:
        run = super().create_run(experiment_id, user_id, start_time, tags, run_name)
        files = session.take_files({t.key: t.value for t in tags or []})
        if files:
            uploader.submit(self, run, files)
        return run

    def upload_capture(self, run: Any, files: list[session.PendingFile]) -> None:
        """Uploads the captured files into the run; a failure is tagged on the run."""
        try:
            self._upload(run.info.artifact_uri, files)
        except Exception as e:  # noqa: BLE001 - capture never fails a run
            message = f"upload: {type(e).__name__}: {e}"
            warnings.warn(f"Cairn capture incomplete: {message}", stacklevel=2)
            try:
                self.set_tag(run.info.run_id, RunTag(session.TAG_ERROR, message[: session.MAX_TAG_VALUE]))
            except Exception:  # noqa: BLE001 - the server may be gone altogether
                pass

    def _upload(self, artifact_uri: str, files: list[session.PendingFile]) -> None:
        repo = get_artifact_repository(artifact_uri, tracking_uri=self.store_uri)
        with tempfile.TemporaryDirectory(prefix="cairn-capture-") as tmp:
            for f in files:
                path = Path(tmp) / f.artifact_dir / f.name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(f.data)
            for directory in sorted({f.artifact_dir for f in files}):
                repo.log_artifacts(str(Path(tmp) / directory), directory)


def rest_store(store_uri: str, **_: Any) -> CairnRestStore:
    """The builder MLflow's store registry calls for `http(s)://` tracking URIs."""
    return CairnRestStore(store_uri)
