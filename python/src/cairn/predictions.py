"""`PredictionLogger`: served predictions to Cairn without slowing the request that made them.

The calling thread only appends a tuple to a deque (no lock, no I/O, well under 10 µs); a
background thread sends batches of up to `batch_size` every `flush_interval_ms`, retrying with
back-off. What cannot be delivered is appended to a JSON-lines spill file and sent again once
the server answers, rather than dropped. If the queue is full (the server is down and the
process produces faster than it spills), the calling thread writes to the spill file itself, so
memory stays bounded.

A batch is stored atomically by the server and prediction ids are unique, so a batch retried
after an answer was lost comes back "already stored": the logger counts that as delivered.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cairn._exceptions import APIError, CairnError, ConnectionFailed, RateLimited, ServerError
from cairn._transport import backoff
from cairn.client import API, Client

MAX_BATCH = 10_000


@dataclass
class Stats:
    """What happened to the predictions logged so far."""

    logged: int = 0
    delivered: int = 0
    spilled: int = 0  # written to the spill file (and not yet sent from it)
    rejected: int = 0  # refused by the server as invalid: not retried, kept in the spill file
    batches: int = 0
    failures: int = 0


class PredictionLogger:
    """Logs predictions of one deployment (or model version) from any number of threads."""

    def __init__(
        self,
        deployment: str | None = None,
        *,
        model_version: str | None = None,
        client: Client | None = None,
        batch_size: int = 5_000,
        flush_interval_ms: int = 200,
        max_queue: int = 200_000,
        max_retries: int = 5,
        spill_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if (deployment is None) == (model_version is None):
            raise ValueError("give exactly one of deployment or model_version")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be in [1, {MAX_BATCH}]")
        self.client = client or Client()
        self._target = ("deployment", deployment) if deployment else ("model_version", model_version)
        self.batch_size = batch_size
        self.interval = flush_interval_ms / 1000
        self.max_queue = max_queue
        self.max_retries = max_retries
        host = urlsplit(self.client.url).netloc.replace(":", "_") or "local"
        default_spill = Path.home() / ".cairn" / "spool" / f"predictions-{host}.jsonl"
        self.spill_path = Path(spill_path) if spill_path else default_spill
        self.stats = Stats()
        self._queue: deque[tuple[str, str, str | None, int]] = deque()
        self._spill_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cairn-predictions", daemon=True)
        self._thread.start()

    # ---- the calling thread ----------------------------------------------------------------

    def log(
        self, prediction_id: str, input_digest: str, output_digest: str | None = None, time_ms: int | None = None
    ) -> None:
        """Queues one prediction; never blocks on the network."""
        item = (prediction_id, input_digest, output_digest, time_ms or int(time.time() * 1000))
        if len(self._queue) >= self.max_queue:
            self._spill([item])
            return
        self._queue.append(item)

    def flush(self, timeout: float = 30.0) -> bool:
        """Waits until everything queued so far was sent or spilled; `True` if it was."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._idle.clear()
            self._wake.set()
            if self._idle.wait(max(0.0, deadline - time.monotonic())) and not self._queue:
                return True
        return not self._queue

    def close(self, timeout: float = 30.0) -> None:
        """Flushes and stops the background thread."""
        self.flush(timeout)
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)

    def __enter__(self) -> "PredictionLogger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the background thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            self._drain()
            self._idle.set()
            if self._closed:
                return

    def _drain(self) -> None:
        while self._queue:
            batch: list[tuple[str, str, str | None, int]] = []
            while self._queue and len(batch) < self.batch_size:
                batch.append(self._queue.popleft())
            self.stats.logged += len(batch)
            if not self._deliver([self._wire(i) for i in batch]):
                self._spill(batch, counted=True)
                return  # the server is down: leave the rest queued for the next round
        self._replay_spill()

    def _wire(self, item: tuple[str, str, str | None, int]) -> dict[str, Any]:
        prediction_id, input_digest, output_digest, at = item
        out: dict[str, Any] = {"prediction_id": prediction_id, "input_digest": input_digest, "time": at}
        out[self._target[0]] = self._target[1]
        if output_digest is not None:
            out["output_digest"] = output_digest
        return out

    def _deliver(self, batch: list[dict[str, Any]]) -> bool:
        """Sends one batch with retries; `True` once it is stored (or was already), or once the
        server refused it as invalid (it then goes to the `.rejected` file: sending it again
        cannot help)."""
        maybe_sent = False
        for attempt in range(self.max_retries + 1):
            try:
                self.client.transport.request(
                    "POST", f"{API}/predictions", json={"predictions": batch}, retries=0
                )
                self.stats.delivered += len(batch)
                self.stats.batches += 1
                return True
            except ConnectionFailed:
                maybe_sent = True
            except (RateLimited, ServerError):
                pass
            except APIError as e:
                if maybe_sent and e.error_code == "RESOURCE_ALREADY_EXISTS":
                    self.stats.delivered += len(batch)
                    return True
                self.stats.rejected += len(batch)
                self._write_lines(self.spill_path.with_suffix(".rejected.jsonl"), batch)
                return True
            except CairnError:
                pass
            self.stats.failures += 1
            if self._closed and attempt >= 1:
                break
            time.sleep(backoff(attempt))
        return False

    def _write_lines(self, path: Path, rows: list[dict[str, Any]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
            f.flush()
            os.fsync(f.fileno())

    def _spill(self, items: list[tuple[str, str, str | None, int]], counted: bool = False) -> None:
        with self._spill_lock:
            self._write_lines(self.spill_path, [self._wire(i) for i in items])
        if not counted:
            self.stats.logged += len(items)
        self.stats.spilled += len(items)

    def _replay_spill(self) -> None:
        """Sends the spill file in batches; what is sent is removed, what fails stays."""
        with self._spill_lock:
            if not self.spill_path.exists():
                return
            rows = [json.loads(line) for line in self.spill_path.read_text(encoding="utf-8").splitlines() if line]
            sent = 0
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start : start + self.batch_size]
                if not self._deliver(batch):
                    break
                sent += len(batch)
            self.stats.spilled = max(0, self.stats.spilled - sent)
            rest = rows[sent:]
            if rest:
                tmp = self.spill_path.with_suffix(".tmp")
                tmp.write_text("".join(json.dumps(r) + "\n" for r in rest), encoding="utf-8")
                os.replace(tmp, self.spill_path)
            else:
                self.spill_path.unlink()
