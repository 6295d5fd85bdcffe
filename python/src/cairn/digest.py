"""Content digests computed the way the server computes them, by streaming, so a dataset of any
size is hashed in constant memory and the client's digest names the same bytes as the server's.

- A file: SHA-256 of its bytes, hex (what the artifact store names blobs by).
- A folder (a partitioned Parquet or CSV dataset): SHA-256 of the canonical JSON of the
  `[relative path, file digest, size]` rows in path order, the same manifest digest the server
  gives a logged model's files. Paths use `/` whatever the platform.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace, as the server's `canonical_json`."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: str | os.PathLike[str]) -> tuple[str, int]:
    """The SHA-256 of a file's bytes and its size."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def folder_manifest(root: str | os.PathLike[str]) -> list[tuple[str, str, int]]:
    """Every regular file under `root` as `(relative path, digest, size)`, in path order."""
    base = Path(root)
    rows = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            if not full.is_file():
                continue
            digest, size = file_digest(full)
            rows.append((full.relative_to(base).as_posix(), digest, size))
    rows.sort(key=lambda r: r[0])
    return rows


def manifest_digest(rows: list[tuple[str, str, int]]) -> str:
    """The digest of a file manifest (see the module docs)."""
    return sha256_hex(canonical_json([list(r) for r in rows]).encode())


def dataset_digest(path: str | os.PathLike[str]) -> str:
    """The content digest of a dataset: a file or a folder of files."""
    p = Path(path)
    if p.is_dir():
        rows = folder_manifest(p)
        if not rows:
            raise ValueError(f"{p} holds no files, so it has no content to digest")
        return manifest_digest(rows)
    if p.is_file():
        return file_digest(p)[0]
    raise FileNotFoundError(f"No dataset at {p}")
