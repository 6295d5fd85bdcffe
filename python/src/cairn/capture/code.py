"""The code a run executes: repository, commit, branch, whether the tree is dirty, the
uncommitted changes as a patch, and the entry point.

The patch holds `git diff HEAD` of tracked files (binary changes included, so `git apply`
restores them) followed by untracked source files as new-file hunks. Untracked files count only
when git does not ignore them, their suffix is a source suffix, they are text, and they are
under `MAX_UNTRACKED_FILE_BYTES`; the whole patch is capped at `MAX_PATCH_BYTES`, beyond which
it is kept truncated and the run says so (`cairn.source.git.diff_truncated`).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cairn.capture._proc import run

MAX_UNTRACKED_FILE_BYTES = 256 * 1024
MAX_PATCH_BYTES = 8 * 1024 * 1024
SOURCE_SUFFIXES = frozenset(
    ".py .pyi .pyx .ipynb .r .jl .scala .java .kt .js .ts .c .h .cc .cpp .hpp .cu .rs .go .sh .sql "
    ".yaml .yml .toml .json .cfg .ini .txt .md .proto .conf".split()
)


@dataclass
class CodeInfo:
    """What git says about the working tree a run started in."""

    root: str
    repository: str
    commit: str
    branch: str | None
    dirty: bool
    patch: bytes
    truncated: bool
    skipped: list[str] = field(default_factory=list)

    @property
    def diff_digest(self) -> str | None:
        return hashlib.sha256(self.patch).hexdigest() if self.patch else None

    @property
    def node_key(self) -> str:
        """The code-version key the server derives from the run's tags."""
        key = f"{self.repository}@{self.commit}"
        return key + f"+{self.diff_digest}" if self.diff_digest else key


def redact_url(url: str) -> str:
    """A remote URL without credentials (`https://user:token@host/x` → `https://host/x`)."""
    if "://" not in url:
        return url  # scp-like `git@host:org/repo.git` has a user but no secret
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


# The repository root and remote of a working directory do not change while a process runs;
# asking git once saves two subprocesses per run.
_repo_cache: dict[str, tuple[str, str] | None] = {}


def _repository(cwd: str) -> tuple[str, str] | None:
    if cwd not in _repo_cache:
        root = run(["git", "rev-parse", "--show-toplevel"], cwd=cwd)
        if root is None:
            _repo_cache[cwd] = None
        else:
            root = root.strip()
            remote = run(["git", "remote", "get-url", "origin"], cwd=root)
            repository = redact_url(remote.strip()) if remote else Path(root).resolve().as_uri()
            _repo_cache[cwd] = (root, repository)
    return _repo_cache[cwd]


def git_info(cwd: str | None = None) -> CodeInfo | None:
    """The repository containing `cwd`, or `None` when it is not in one (or git is missing).

    Two git processes, started together: `git status` (commit, branch, untracked files) and
    `git diff HEAD` (the tracked changes). On a loaded two-core machine each costs several
    milliseconds, so running them side by side keeps `start_run` within its budget.
    """
    found = _repository(cwd or os.getcwd())
    if found is None:
        return None
    root, repository = found
    status_args = ["git", "status", "--porcelain=v2", "-z", "--branch", "--untracked-files=all"]
    diff_args = ["git", "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"]
    procs = [_spawn(status_args, root), _spawn(diff_args, root)]
    (status, status_ok), (tracked, diff_ok) = (_finish(p) for p in procs)
    if not status_ok:
        return None
    commit, branch, untracked = _parse_status(status)
    if commit is None:
        return None  # a repository with no commit yet has no version to name
    patch, truncated, skipped = uncommitted_patch(root, tracked if diff_ok else b"", untracked)
    return CodeInfo(
        root=root,
        repository=repository,
        commit=commit,
        branch=branch,
        dirty=bool(patch),
        patch=patch,
        truncated=truncated,
        skipped=skipped,
    )


def _spawn(args: list[str], cwd: str) -> subprocess.Popen[bytes] | None:
    try:
        return subprocess.Popen(
            args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except OSError:
        return None


def _finish(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> tuple[bytes, bool]:
    if proc is None:
        return b"", False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return b"", False
    return out, proc.returncode == 0


def _parse_status(status: bytes) -> tuple[str | None, str | None, list[str]]:
    """Commit, branch and untracked paths from `git status --porcelain=v2 -z --branch`."""
    commit = branch = None
    untracked = []
    for entry in status.split(b"\0"):
        text = entry.decode("utf-8", errors="surrogateescape")
        if text.startswith("# branch.oid "):
            oid = text.removeprefix("# branch.oid ")
            commit = None if oid == "(initial)" else oid
        elif text.startswith("# branch.head "):
            head = text.removeprefix("# branch.head ")
            branch = None if head == "(detached)" else head
        elif text.startswith("? "):
            untracked.append(text[2:])
    return commit, branch, sorted(untracked)


def uncommitted_patch(root: str, tracked: bytes, untracked: list[str]) -> tuple[bytes, bool, list[str]]:
    """The patch of uncommitted changes, whether it was truncated, and untracked files left out."""
    parts = [tracked]
    size = len(tracked)
    skipped: list[str] = []
    for rel in untracked:
        path = Path(root) / rel
        if path.suffix.lower() not in SOURCE_SUFFIXES or not path.is_file():
            continue
        if path.stat().st_size > MAX_UNTRACKED_FILE_BYTES:
            skipped.append(rel)
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            skipped.append(rel)
            continue
        hunk = new_file_hunk(rel, data)
        if size + len(hunk) > MAX_PATCH_BYTES:
            skipped.append(rel)
            continue
        parts.append(hunk)
        size += len(hunk)
    patch = b"".join(parts)
    truncated = len(patch) > MAX_PATCH_BYTES
    return (patch[:MAX_PATCH_BYTES] if truncated else patch), truncated or bool(skipped), skipped


def new_file_hunk(rel: str, data: bytes) -> bytes:
    """An untracked file as a git new-file patch, so `git apply` recreates it."""
    lines = data.split(b"\n")
    no_newline = not data.endswith(b"\n")
    if not no_newline:
        lines = lines[:-1]
    head = (
        f"diff --git a/{rel} b/{rel}\nnew file mode 100644\n--- /dev/null\n+++ b/{rel}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n"
    ).encode()
    body = b"".join(b"+" + line + b"\n" for line in lines)
    if no_newline and lines:
        body += b"\\ No newline at end of file\n"
    return head + body if lines else f"diff --git a/{rel} b/{rel}\nnew file mode 100644\n".encode()


_SECRETISH = re.compile(r"(?i)(token|secret|passw(or)?d|api[_-]?key|credential)[=:]")


def entry_point(root: str | None) -> tuple[list[str], str]:
    """`sys.argv` with values of secret-looking options masked, and the working directory
    relative to the repository root (absolute when outside it)."""
    argv = []
    mask_next = False
    for arg in sys.argv:
        if mask_next:
            argv.append("***")
            mask_next = False
        elif _SECRETISH.search(arg):
            argv.append(arg.split("=", 1)[0] + "=***" if "=" in arg else "***")
        elif re.fullmatch(r"(?i)--?[\w-]*(token|secret|password|api[_-]?key)[\w-]*", arg):
            argv.append(arg)
            mask_next = True
        else:
            argv.append(arg)
    cwd = Path.cwd()
    if root is not None:
        try:
            return argv, cwd.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return argv, str(cwd)
