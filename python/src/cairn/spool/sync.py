"""The spool's state for one server, and the replay.

A write goes to the server while it answers. When it cannot be reached (connection refused or
timed out, or 5xx/429 after a short retry), or `CAIRN_OFFLINE=1`, the write is journaled instead
and the caller carries on. While the journal holds entries every later write is journaled too,
so order is kept; at most once a second a write first probes the server and, if it answers,
replays the journal before going online again. `cairn-sync` replays a journal a finished or
crashed process left behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from cairn._config import resolve
from cairn._exceptions import APIError, CairnError, ConnectionFailed, RateLimited, ServerError
from cairn._transport import Transport, in_progress
from cairn.spool.journal import Journal, JournalCorrupt, path_for, spool_dir

log = logging.getLogger(__name__)
PROBE_INTERVAL_SECS = 1.0
T = TypeVar("T")


class Unreachable(Exception):
    """The server did not answer a write; the write can be journaled."""


def forced_offline() -> bool:
    return os.environ.get("CAIRN_OFFLINE", "").lower() in ("1", "true", "yes")


def replay(journal: Journal, transport: Transport, limit: int | None = None) -> tuple[int, bool]:
    """Sends the journal in order; returns how many entries were applied and whether the
    journal is now empty. Raises `JournalCorrupt` before sending anything from a damaged one."""
    sent = 0
    for entry in journal.entries():
        if limit is not None and sent >= limit:
            return sent, False
        method, _, path = entry.route.partition(" ")
        try:
            transport.request(
                method, path, json=entry.body, retries=0, headers={"Idempotency-Key": entry.idempotency_key}
            )
        except (ConnectionFailed, ServerError, RateLimited):
            return sent, False
        except APIError as e:
            if in_progress(e):
                # Another process is replaying this entry right now; it is not refused, so it
                # stays, and the next replay finds its recorded answer.
                return sent, False
            # Refused as invalid now, so it would have been refused then: kept aside, reported.
            warnings.warn(f"Cairn spool: the server refused journaled write {entry.seq} ({entry.route}): {e}", stacklevel=2)
            journal.reject(entry, str(e))
        else:
            journal.done(entry.seq)
        sent += 1
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

    def write(self, route: str, body: dict[str, Any], online: Callable[[], T], offline: Callable[[], T]) -> T:
        """Runs `online`, or journals `route` + `body` and returns `offline()` when the server
        is away (or entries wait before this one)."""
        with self._lock:
            if not forced_offline() and (self._offline or self._pending()):
                self._try_sync()
            if forced_offline() or self._offline or self._pending():
                result = offline()  # first: it may complete the body (an offline run's name)
                self.journal.append(route, body)
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
                self.journal.append(route, body)
            return result

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
