"""The journal: one SQLite file per target server under `~/.cairn/spool/` (or `CAIRN_SPOOL_DIR`).

Each entry is one MLflow write: the route, its JSON body, an idempotency key, and a SHA-256 of
all three, so a damaged entry is detected before anything is replayed. Entries are replayed in
`seq` order and deleted one by one as the server confirms them, each in its own transaction, so
an interrupted sync resumes where it stopped. The one entry that may be sent twice (confirmed by
the server, then the process died before deleting it) carries the same `Idempotency-Key` both
times, so the server answers the repeat from its record; and it is a write the server would
apply once anyway: a run created under its chosen id answers the existing run, identical metric
points are stored once, params and tags set to the same value are no-ops.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    route TEXT NOT NULL,
    body TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    checksum TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY,
    route TEXT NOT NULL,
    body TEXT NOT NULL,
    error TEXT NOT NULL
);
"""


class JournalCorrupt(Exception):
    """The journal cannot be trusted; nothing was replayed."""


@dataclass(frozen=True)
class Entry:
    seq: int
    route: str
    body: dict[str, Any]
    idempotency_key: str


def spool_dir() -> Path:
    return Path(os.environ.get("CAIRN_SPOOL_DIR") or Path.home() / ".cairn" / "spool")


def path_for(server_url: str) -> Path:
    """The journal of one server: `<host>_<port>.db`, from its URL."""
    parts = urlsplit(server_url)
    name = f"{parts.hostname or 'local'}_{parts.port or (443 if parts.scheme == 'https' else 80)}"
    prefix = parts.path.strip("/").replace("/", "_")
    return spool_dir() / (f"{name}_{prefix}.db" if prefix else f"{name}.db")


def checksum(route: str, body: str, key: str) -> str:
    return hashlib.sha256(f"{len(route)}:{route}{len(key)}:{key}{body}".encode()).hexdigest()


class Journal:
    """An append-only queue of writes in one SQLite file, safe across threads and processes."""

    def __init__(self, path: Path, server_url: str | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a journaled point survives a crash
        self._db.executescript(SCHEMA)
        if server_url is not None:
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('server_url', ?)", (server_url,))

    @property
    def server_url(self) -> str | None:
        """The server this journal's writes are for (`cairn-sync` replays there)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'server_url'").fetchone()
        return str(row[0]) if row else None

    def append(self, route: str, body: dict[str, Any]) -> str:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        key = uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO entries (route, body, idempotency_key, checksum, created_at) VALUES (?, ?, ?, ?, ?)",
                (route, text, key, checksum(route, text, key), time.time()),
            )
        return key

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def entries(self) -> list[Entry]:
        """Every entry in order, after checking all of them: one damaged entry and none is
        returned (`JournalCorrupt` names them), so a sync never applies half a journal."""
        with self._lock:
            try:
                check = self._db.execute("PRAGMA integrity_check").fetchone()[0]
                rows = self._db.execute(
                    "SELECT seq, route, body, idempotency_key, checksum FROM entries ORDER BY seq"
                ).fetchall()
            except sqlite3.DatabaseError as e:
                raise JournalCorrupt(f"{self.path}: {e}") from e
        if check != "ok":
            raise JournalCorrupt(f"{self.path}: SQLite integrity check failed: {check}")
        bad, out = [], []
        for seq, route, body, key, digest in rows:
            if not all(isinstance(v, str) for v in (route, body, key, digest)) or checksum(route, body, key) != digest:
                bad.append(seq)
                continue
            try:
                parsed = json.loads(body)
            except ValueError:
                bad.append(seq)
                continue
            out.append(Entry(seq, route, parsed, key))
        if bad:
            raise JournalCorrupt(
                f"{self.path}: {len(bad)} damaged entr{'y' if len(bad) == 1 else 'ies'} (seq {', '.join(map(str, bad[:10]))}); "
                "nothing was replayed. Inspect the file, remove the damaged rows to replay the rest."
            )
        return out

    def done(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM entries WHERE seq = ?", (seq,))

    def reject(self, entry: Entry, error: str) -> None:
        """Moves an entry the server refused as invalid aside, where `cairn-sync` reports it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR REPLACE INTO rejected (seq, route, body, error) VALUES (?, ?, ?, ?)",
                (entry.seq, entry.route, json.dumps(entry.body), error),
            )
            self._db.execute("DELETE FROM entries WHERE seq = ?", (entry.seq,))
            self._db.execute("COMMIT")

    def rejected(self) -> list[tuple[int, str, str]]:
        with self._lock:
            return [(int(s), str(r), str(e)) for s, r, e in self._db.execute("SELECT seq, route, error FROM rejected")]

    def close(self) -> None:
        with self._lock:
            self._db.close()
