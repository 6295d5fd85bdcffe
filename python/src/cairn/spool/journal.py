"""The journal: one SQLite file per target server under `~/.cairn/spool/` (or `CAIRN_SPOOL_DIR`).

Each entry is one MLflow write: the route, its JSON body, an idempotency key, and a SHA-256 of
all three, so a damaged entry is detected before anything is replayed. Entries are replayed in
`seq` order and deleted one by one as the server confirms them, each in its own transaction, so
an interrupted sync resumes where it stopped. The one entry that may be sent twice (confirmed by
the server, then the process died before deleting it) carries the same `Idempotency-Key` both
times, so the server answers the repeat from its record; and it is a write the server would
apply once anyway: a run created under its chosen id answers the existing run, identical metric
points are stored once, params and tags set to the same value are no-ops.

Artifacts: an entry may name a *blob*, the bytes of a file logged while the server was away,
kept beside the journal in `<journal>.blobs/<sha256>` (content-addressed: the same file logged
twice is stored once). An entry and its blob become visible together (`append` checks the blob
inside the write transaction), and a blob is removed in the transaction that deletes the last
entry naming it. `entries()` hashes every blob before anything is replayed: one that is missing
or whose SHA-256 no longer matches makes the journal corrupt, like a damaged entry.

Substitutions: what the server decides on replay that entries journaled after it must name (the
number of a model version created offline, the artifact location of a run created offline) is
recorded in the same transaction that removes the entry, so a replay interrupted after it still
rewrites the later entries.
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
CREATE TABLE IF NOT EXISTS substitutions (
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
    blob: str | None = None


def spool_dir() -> Path:
    return Path(os.environ.get("CAIRN_SPOOL_DIR") or Path.home() / ".cairn" / "spool")


def path_for(server_url: str) -> Path:
    """The journal of one server: `<host>_<port>.db`, from its URL."""
    parts = urlsplit(server_url)
    name = f"{parts.hostname or 'local'}_{parts.port or (443 if parts.scheme == 'https' else 80)}"
    prefix = parts.path.strip("/").replace("/", "_")
    return spool_dir() / (f"{name}_{prefix}.db" if prefix else f"{name}.db")


BLOB_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(BLOB_CHUNK):
            h.update(chunk)
    return h.hexdigest()


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
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(entries)")}
        if "blob" not in columns:  # a journal written before artifacts were spooled
            try:
                self._db.execute("ALTER TABLE entries ADD COLUMN blob TEXT")
            except sqlite3.OperationalError:  # another process added it first
                pass
        self._db.execute("CREATE INDEX IF NOT EXISTS entries_blob ON entries (blob) WHERE blob IS NOT NULL")
        if server_url is not None:
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('server_url', ?)", (server_url,))

    @property
    def server_url(self) -> str | None:
        """The server this journal's writes are for (`cairn-sync` replays there)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'server_url'").fetchone()
        return str(row[0]) if row else None

    @property
    def blob_dir(self) -> Path:
        return self.path.with_name(self.path.stem + ".blobs")

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest

    def add_blob(self, source: Path | bytes) -> tuple[str, int]:
        """Copies a file (or bytes) into the blob folder, hashing it on the way; returns its
        SHA-256 and size. The copy is written aside, synced and renamed into place, so a blob
        under its digest is always whole."""
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.blob_dir / f"tmp-{uuid.uuid4().hex}"
        h = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as out:
                if isinstance(source, bytes):
                    h.update(source)
                    out.write(source)
                    size = len(source)
                else:
                    with open(source, "rb") as f:
                        while chunk := f.read(BLOB_CHUNK):
                            h.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = h.hexdigest()
            os.replace(tmp, self.blob_path(digest))
        finally:
            tmp.unlink(missing_ok=True)
        return digest, size

    def append(self, route: str, body: dict[str, Any], blob: str | None = None) -> str | None:
        """Journals one write; `None` (nothing journaled) when `blob` is no longer in the blob
        folder, removed by a replay in another process since `add_blob`: copy it again."""
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        key = uuid.uuid4().hex
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if blob is not None and not self.blob_path(blob).is_file():
                    self._db.execute("ROLLBACK")
                    return None
                self._db.execute(
                    "INSERT INTO entries (route, body, idempotency_key, checksum, created_at, blob) VALUES (?, ?, ?, ?, ?, ?)",
                    (route, text, key, checksum(route, text, key), time.time(), blob),
                )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return key

    def bodies(self, route: str) -> list[dict[str, Any]]:
        """The bodies of the entries of one route, in order, unchecked (for offline answers)."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM entries WHERE route = ? ORDER BY seq", (route,)).fetchall()
        out = []
        for (body,) in rows:
            try:
                out.append(json.loads(body))
            except ValueError:
                continue
        return out

    def substitutions(self) -> dict[str, str]:
        with self._lock:
            return {str(k): str(v) for k, v in self._db.execute("SELECT key, value FROM substitutions")}

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
                    "SELECT seq, route, body, idempotency_key, checksum, blob FROM entries ORDER BY seq"
                ).fetchall()
            except sqlite3.DatabaseError as e:
                raise JournalCorrupt(f"{self.path}: {e}") from e
        if check != "ok":
            raise JournalCorrupt(f"{self.path}: SQLite integrity check failed: {check}")
        bad, out = [], []
        corrupt: list[str] = []
        checked: dict[str, bool] = {}
        for seq, route, body, key, digest, blob in rows:
            if not all(isinstance(v, str) for v in (route, body, key, digest)) or checksum(route, body, key) != digest:
                bad.append(seq)
                continue
            try:
                parsed = json.loads(body)
            except ValueError:
                bad.append(seq)
                continue
            if blob is not None:
                # The body names the blob too (it is under the checksum); the column is an index.
                if not isinstance(parsed, dict) or parsed.get("digest") != blob:
                    bad.append(seq)
                    continue
                if blob not in checked:
                    path = self.blob_path(blob)
                    checked[blob] = path.is_file() and file_digest(path) == blob
                if not checked[blob]:
                    corrupt.append(f"seq {seq} ({parsed.get('path')}): blob {blob[:12]}… "
                                   + ("missing" if not self.blob_path(blob).is_file() else "does not match its SHA-256"))
                    continue
            out.append(Entry(seq, route, parsed, key, blob))
        if bad:
            raise JournalCorrupt(
                f"{self.path}: {len(bad)} damaged entr{'y' if len(bad) == 1 else 'ies'} (seq {', '.join(map(str, bad[:10]))}); "
                "nothing was replayed. Inspect the file, remove the damaged rows to replay the rest."
            )
        if corrupt:
            raise JournalCorrupt(
                f"{self.path}: corrupt artifact blob{'s' if len(corrupt) > 1 else ''} in {self.blob_dir}: "
                f"{'; '.join(corrupt[:10])}; nothing was replayed. Restore the file, or remove the entry "
                "to replay the rest."
            )
        return out

    def done(self, seq: int, learned: dict[str, str] | None = None) -> None:
        """Removes a replayed entry, records what later entries must substitute, and removes
        the entry's blob if no other entry needs it, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for k, v in (learned or {}).items():
                    self._db.execute("INSERT OR REPLACE INTO substitutions (key, value) VALUES (?, ?)", (k, v))
                row = self._db.execute("SELECT blob FROM entries WHERE seq = ?", (seq,)).fetchone()
                self._db.execute("DELETE FROM entries WHERE seq = ?", (seq,))
                if row is not None and row[0] is not None:
                    self._release_blob(str(row[0]))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _release_blob(self, blob: str) -> None:
        # Inside the caller's write transaction: no `append` naming it can commit meanwhile.
        if self._db.execute("SELECT 1 FROM entries WHERE blob = ? LIMIT 1", (blob,)).fetchone() is None:
            self.blob_path(blob).unlink(missing_ok=True)

    def sweep_blobs(self, tmp_age_secs: float = 3600.0) -> int:
        """Removes blobs no entry names (left by a process that died between copying a file and
        journaling it), keeping those of refused entries (`rejected`, for inspection). Only when
        the journal is empty, and only half-written copies older than `tmp_age_secs`, so no
        writer between `add_blob` and `append` loses its file (`append` would copy it again)."""
        if not self.blob_dir.is_dir():
            return 0
        removed = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] != 0:
                    return 0
                keep = set()
                for (body,) in self._db.execute("SELECT body FROM rejected"):
                    try:
                        keep.add(json.loads(body).get("digest"))
                    except (ValueError, AttributeError):
                        pass
                now = time.time()
                for f in self.blob_dir.iterdir():
                    stale_tmp = f.name.startswith("tmp-") and now - f.stat().st_mtime > tmp_age_secs
                    if (len(f.name) == 64 and f.name not in keep) or stale_tmp:
                        f.unlink(missing_ok=True)
                        removed += 1
            finally:
                if self._db.in_transaction:
                    self._db.execute("COMMIT")
        return removed

    def reject(self, entry: Entry, error: str) -> None:
        """Moves an entry the server refused as invalid aside, where `cairn-sync` reports it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR REPLACE INTO rejected (seq, route, body, error) VALUES (?, ?, ?, ?)",
                (entry.seq, entry.route, json.dumps(entry.body), error),
            )
            # A refused artifact keeps its blob, for inspection; `sweep_blobs` keeps it too.
            self._db.execute("DELETE FROM entries WHERE seq = ?", (entry.seq,))
            self._db.execute("COMMIT")

    def rejected(self) -> list[tuple[int, str, str]]:
        with self._lock:
            return [(int(s), str(r), str(e)) for s, r, e in self._db.execute("SELECT seq, route, error FROM rejected")]

    def close(self) -> None:
        with self._lock:
            self._db.close()
