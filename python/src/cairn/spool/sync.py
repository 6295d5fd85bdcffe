"""The spool's state for one server, and the replay.

A write goes to the server while it answers. When it cannot be reached (connection refused or
timed out, or 5xx/429 after a short retry), or `CAIRN_OFFLINE=1`, the write is journaled instead
and the caller carries on. While the journal holds entries every later write is journaled too,
so order is kept; at most once a second a write first probes the server and, if it answers,
replays the journal before going online again. `cairn-sync` replays a journal a finished or
crashed process left behind.

Entries are MLflow REST writes (`"POST /api/2.0/mlflow/..."`), sent as journaled, or artifact
uploads (`ARTIFACT`, a blob to PUT through MLflow's `mlflow-artifacts` routes). A body may carry
a `$cairn` mark, never sent: it names a placeholder the client returned offline (the version of
a model version created offline, the guessed artifact location of a run or logged model created
offline), and replay learns the server's value from the answer and substitutes it in every later
entry.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

from cairn._config import resolve
from cairn._exceptions import APIError, CairnError, ConnectionFailed, RateLimited, ServerError
from cairn._transport import Transport, in_progress
from cairn.spool.journal import Entry, Journal, JournalCorrupt, path_for, spool_dir

log = logging.getLogger(__name__)
PROBE_INTERVAL_SECS = 1.0
T = TypeVar("T")
# The route of an artifact upload; its body is {"artifact_uri", "path", "digest", "size"}.
ARTIFACT_ROUTE = "ARTIFACT"
# The key of a body's mark (never sent): {"version": placeholder} or {"artifact_uri": guess}.
MARK = "$cairn"


def new_placeholder() -> str:
    """The version of a model version created offline: a negative number, which no server gives
    and which MLflow's client still accepts where it insists on an integer
    (`set_registered_model_alias` calls `int(version)`)."""
    return f"-{secrets.randbelow(9 * 10**11) + 10**11}"


def is_placeholder(version: Any) -> bool:
    return isinstance(version, str) and version.startswith("-") and version[1:].isdigit()


class Unreachable(Exception):
    """The server did not answer a write; the write can be journaled."""


class Refused(Exception):
    """The server refused a journaled artifact upload (a 4xx): kept aside, like refused writes."""


def version_key(name: str, placeholder: str) -> str:
    return f"version\x1f{name}\x1f{placeholder}"


def uri_key(uri: str) -> str:
    return f"uri\x1f{uri}"


def substitute_uri(uri: str, subst: dict[str, str]) -> str:
    for key, real in subst.items():
        if key.startswith("uri\x1f"):
            guess = key[4:]
            if uri == guess or uri.startswith(guess + "/"):
                return real + uri[len(guess):]
    return uri


def substitute(body: dict[str, Any], subst: dict[str, str]) -> dict[str, Any]:
    """The body to send: without its mark, with the server's values for the placeholders it
    names (a model version's number, an offline run's artifact location)."""
    out = {k: v for k, v in body.items() if k != MARK}
    if not subst:
        return out
    name, version = out.get("name"), out.get("version")
    if isinstance(name, str) and is_placeholder(version):
        out["version"] = subst.get(version_key(name, str(version)), version)
    for field in ("artifact_uri", "source"):
        value = out.get(field)
        if isinstance(value, str):
            out[field] = substitute_uri(value, subst)
    if isinstance(out.get("tags"), list):
        out["tags"] = [_substitute_versions_tag(tag, subst) for tag in out["tags"]]
    return out


# The logged-model tag in which MLflow's client lists the versions registered from the model
# (`[{"name": ..., "version": ...}]`), set after registering: offline it names placeholders.
MODEL_VERSIONS_TAG = "mlflow.modelVersions"


def _substitute_versions_tag(tag: Any, subst: dict[str, str]) -> Any:
    if not isinstance(tag, dict) or tag.get("key") != MODEL_VERSIONS_TAG:
        return tag
    try:
        versions = json.loads(str(tag.get("value")))
    except ValueError:
        return tag
    if not isinstance(versions, list):
        return tag
    for v in versions:
        if isinstance(v, dict) and is_placeholder(v.get("version")):
            v["version"] = subst.get(version_key(str(v.get("name")), str(v["version"])), v["version"])
    return {**tag, "value": json.dumps(versions)}


def learn(body: dict[str, Any], answer: Any) -> dict[str, str]:
    """What the answer to a marked entry tells the entries after it."""
    mark = body.get(MARK)
    if not isinstance(mark, dict) or not isinstance(answer, dict):
        return {}
    learned = {}
    if isinstance(mark.get("version"), str):
        real = (answer.get("model_version") or {}).get("version")
        if real is not None:
            learned[version_key(str(body.get("name")), str(mark["version"]))] = str(real)
    if isinstance(mark.get("artifact_uri"), str):
        # A run's (`runs/create`) or a logged model's (`logged-models/{id}`) answer.
        created = answer.get("run") or answer.get("model") or {}
        real = (created.get("info") or {}).get("artifact_uri")
        if isinstance(real, str) and real != mark["artifact_uri"]:
            learned[uri_key(mark["artifact_uri"])] = real
    return learned


def _already_exists(entry: Entry, error: APIError) -> bool:
    """A registered model created offline that exists on the server now: carried on, as
    `mlflow.register_model` carries on online."""
    return entry.route.endswith("/registered-models/create") and error.error_code in (
        "RESOURCE_ALREADY_EXISTS",
        "ALREADY_EXISTS",
    )


def forced_offline() -> bool:
    return os.environ.get("CAIRN_OFFLINE", "").lower() in ("1", "true", "yes")


def replay(journal: Journal, transport: Transport, limit: int | None = None) -> tuple[int, bool]:
    """Sends the journal in order; returns how many entries were applied and whether the
    journal is now empty. Raises `JournalCorrupt` before sending anything from a damaged one
    (a damaged entry, or an artifact blob missing or not matching its SHA-256)."""
    sent = 0
    subst = journal.substitutions()
    for entry in journal.entries():
        if limit is not None and sent >= limit:
            return sent, False
        body = substitute(entry.body, subst)
        try:
            if entry.route == ARTIFACT_ROUTE and entry.blob is not None:
                from cairn.mlflow_plugin.artifacts import upload_blob

                upload_blob(transport.settings, body, journal.blob_path(entry.blob))
                answer: Any = None
            else:
                method, _, path = entry.route.partition(" ")
                answer = transport.request(
                    method, path, json=body, retries=0, headers={"Idempotency-Key": entry.idempotency_key}
                )
        except (ConnectionFailed, ServerError, RateLimited, Unreachable):
            return sent, False
        except Refused as e:
            warnings.warn(f"Cairn spool: the server refused journaled upload {entry.seq} ({body.get('path')}): {e}", stacklevel=2)
            journal.reject(entry, str(e))
        except APIError as e:
            if in_progress(e):
                # Another process is replaying this entry right now; it is not refused, so it
                # stays, and the next replay finds its recorded answer.
                return sent, False
            if _already_exists(entry, e):
                warnings.warn(
                    f"Cairn spool: registered model {body.get('name')!r} already exists on the server; "
                    "carried on with it, as mlflow.register_model does (the tags and description given "
                    "offline to create_registered_model were not applied)",
                    stacklevel=2,
                )
                journal.done(entry.seq)
            else:
                # Refused as invalid now, so it would have been refused then: kept aside, reported.
                warnings.warn(f"Cairn spool: the server refused journaled write {entry.seq} ({entry.route}): {e}", stacklevel=2)
                journal.reject(entry, str(e))
        else:
            learned = learn(entry.body, answer)
            journal.done(entry.seq, learned)
            subst.update(learned)
        sent += 1
    journal.sweep_blobs()
    return sent, True


class Spool:
    """The journal and online/offline state of one server, shared by every store of it in the
    process."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.path = path_for(self.url)
        self._journal: Journal | None = None
        self._lock = threading.RLock()
        self._offline = False
        self._last_probe = 0.0
        self._warned = False
        self._transport: Transport | None = None

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(self.path, self.url)
        return self._journal

    @property
    def holding(self) -> bool:
        """Whether writes are being journaled now."""
        return forced_offline() or self._offline or self._pending()

    def _pending(self) -> bool:
        # A stat, not an open: online writes pay nothing for the spool.
        return (self._journal is not None or self.path.exists()) and len(self.journal) > 0

    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = Transport(resolve(self.url, max_retries=0, timeout=10))
        return self._transport

    def write(
        self,
        route: str,
        body: dict[str, Any],
        online: Callable[[], T],
        offline: Callable[[], T],
        blob: Path | bytes | None = None,
    ) -> T:
        """Runs `online`, or journals `route` + `body` and returns `offline()` when the server
        is away (or entries wait before this one). With `blob`, the file (or bytes) is copied
        into the spool and the body gets its `digest` and `size`."""
        with self._lock:
            if not forced_offline() and (self._offline or self._pending()):
                self._try_sync()
            if forced_offline() or self._offline or self._pending():
                result = offline()  # first: it may complete the body (an offline run's name)
                self._append(route, body, blob)
                return result
        try:
            return online()
        except Unreachable as e:
            with self._lock:
                self._offline = True
                self._last_probe = time.monotonic()
                if not self._warned:
                    warnings.warn(
                        f"Cairn: {self.url} is unreachable ({e}); writes are journaled in {self.path} "
                        "and sent when it is back (or run cairn-sync)",
                        stacklevel=4,
                    )
                    self._warned = True
                result = offline()
                self._append(route, body, blob)
            return result

    def _append(self, route: str, body: dict[str, Any], blob: Path | bytes | None) -> None:
        if blob is None:
            self.journal.append(route, body)
            return
        for _ in range(5):
            digest, size = self.journal.add_blob(blob)
            body["digest"], body["size"] = digest, size
            if self.journal.append(route, body, blob=digest) is not None:
                return
        raise OSError(f"could not spool {body.get('path')}: its copy in {self.journal.blob_dir} kept being removed")

    def still_holding(self) -> bool:
        """`holding`, after probing the server (at most once a second) and replaying if it is
        back: for reads that answer from what was journaled while it is away, so that they ask
        the server again as soon as it answers."""
        with self._lock:
            if not forced_offline() and (self._offline or self._pending()):
                self._try_sync()
            return self.holding

    def mark_offline(self) -> None:
        """Journals the following writes: the server was found unreachable by a read."""
        with self._lock:
            self._offline = True
            self._last_probe = time.monotonic()

    def substitutions(self) -> dict[str, str]:
        """What replays learned (see `learn`), for writes sent online after a replay that name
        a placeholder; nothing to read when this server never had a journal."""
        if self._journal is None and not self.path.exists():
            return {}
        return self.journal.substitutions()

    def _try_sync(self) -> None:
        now = time.monotonic()
        if now - self._last_probe < PROBE_INTERVAL_SECS:
            return
        self._last_probe = now
        try:
            if requests.get(self.url + "/health", timeout=1).status_code != 200:
                return
        except requests.RequestException:
            return
        try:
            _, empty = replay(self.journal, self.transport())
        except JournalCorrupt as e:
            warnings.warn(f"Cairn spool not replayed: {e}", stacklevel=4)
            return
        if empty:
            self._offline = False
            self._warned = False

    def flush(self) -> bool:
        """Replays now (ignoring the probe interval); `True` when the journal is empty."""
        with self._lock:
            if not self._pending():
                self._offline = False
                return True
            self._last_probe = 0.0
            self._try_sync()
            return not self._pending()


_spools: dict[str, Spool] = {}
_spools_lock = threading.Lock()


def spool_for(url: str) -> Spool:
    with _spools_lock:
        key = url.rstrip("/")
        if key not in _spools:
            _spools[key] = Spool(key)
        return _spools[key]


def main(argv: list[str] | None = None) -> int:
    """`cairn-sync`: replay journals. Exit 0 when every journal is empty, 1 when a server is
    unreachable (nothing lost; run again later), 2 when a journal is damaged."""
    parser = argparse.ArgumentParser(prog="cairn-sync", description=main.__doc__)
    parser.add_argument("url", nargs="?", help="replay only this server's journal (default: every journal)")
    parser.add_argument("--limit", type=int, help="send at most this many entries (for testing)")
    args = parser.parse_args(argv)
    if args.url:
        paths = [path_for(args.url)]
    else:
        paths = sorted(spool_dir().glob("*.db"))
    status = 0
    for path in paths:
        if not path.exists():
            print(f"{path}: no journal")
            continue
        journal = Journal(path)
        url = args.url or journal.server_url
        if url is None:
            print(f"{path}: no server URL recorded; give it as an argument", file=sys.stderr)
            status = max(status, 2)
            continue
        try:
            sent, empty = replay(journal, Transport(resolve(url, max_retries=0, timeout=30)), args.limit)
        except JournalCorrupt as e:
            print(f"error: {e}", file=sys.stderr)
            status = 2
            continue
        except CairnError as e:
            print(f"{url}: {e}", file=sys.stderr)
            status = max(status, 1)
            continue
        left = len(journal)
        print(f"{url}: sent {sent}, {left} left" + ("" if empty else " (server unreachable or limit reached)"))
        for seq, route, error in journal.rejected():
            print(f"  refused by the server, kept in {path}: #{seq} {route}: {error}")
        if left:
            status = max(status, 1)
        journal.close()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
