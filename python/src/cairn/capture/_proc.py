"""Running small helper commands (git, nvidia-smi) with a timeout and no shell."""

from __future__ import annotations

import subprocess


def run(args: list[str], cwd: str | None = None, timeout: float = 5.0) -> str | None:
    """The command's standard output, or `None` if it is missing, fails or times out."""
    try:
        done = subprocess.run(
            args, cwd=cwd, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace")

