"""Builds a platform wheel whose only content is the `cairn` binary, installed into the
environment's `bin/` (wheel `.data/scripts`), so it is on the PATH of the venv.

The binary comes from `CAIRN_BIN`, else the workspace's `target/release/cairn` or
`target/debug/cairn` (build it first with cargo); it is copied with its debug symbols
stripped when `strip` is available. The wheel is tagged `py3-none-<platform>`: it runs on the
platform it was built on and needs no particular Python.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from distutils.command.build_scripts import build_scripts  # setuptools provides distutils

HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parents[1]
STAGED = HERE / "build" / "bin" / "cairn"


def find_binary() -> Path:
    if env := os.environ.get("CAIRN_BIN"):
        return Path(env)
    for profile in ("release", "debug"):
        candidate = WORKSPACE / "target" / profile / "cairn"
        if candidate.is_file():
            return candidate
    raise SystemExit("no cairn binary: run `cargo build -p cairn` first or set CAIRN_BIN")


def stage() -> None:
    source = find_binary()
    STAGED.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, STAGED)
    if shutil.which("strip"):
        subprocess.run(["strip", "--strip-debug", str(STAGED)], check=True)
    STAGED.chmod(0o755)


class PlatformWheel(bdist_wheel):
    """A wheel for this platform only: it carries a native executable."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform = super().get_tag()
        return "py3", "none", platform


class CopyBinary(build_scripts):
    """Copies the executable as it is: setuptools would read it as a Python script to rewrite
    its `#!` line, which a native binary does not have."""

    def run(self) -> None:
        self.mkpath(self.build_dir)
        for script in self.scripts:
            self.copy_file(script, self.build_dir)


stage()
setup(
    scripts=[str(STAGED.relative_to(HERE))],
    packages=[],
    cmdclass={"bdist_wheel": PlatformWheel, "build_scripts": CopyBinary},
)
