"""The llama-cpp-python wheel that the demo, the tests and the benchmarks install.

PyPI ships llama-cpp-python as source only, and compiling it takes minutes, so it is built once
here and every generated project installs it from this folder (``UV_FIND_LINKS``). It is built
exactly as a generated project would build it: the version pinned in the template's
``pyproject.toml`` and the portable flags of its ``[tool.uv.extra-build-variables]`` (no
``-march=native``; every CPU variant, the best one picked at run time). The folder is named after
the version and a digest of the flags, so a change of flags builds a new wheel instead of reusing
one built with other flags (pip's own wheel cache ignores ``CMAKE_ARGS``; it is switched off).

A wheel built once is also kept in the user's cache (``$XDG_CACHE_HOME/copier-llmops/wheels``,
else ``~/.cache/copier-llmops/wheels``; ``COPIER_LLMOPS_WHEEL_CACHE`` names another folder, or
``off``), under the same name: another clone on the same machine copies it instead of
compiling for minutes again. The name holds the version and the flags' digest, so nothing built
with other flags is ever reused.

``python tests/wheelhouse.py`` builds the wheel when it is missing (after checking for a compiler
and CMake) and prints its folder; ``--folder`` prints the folder only.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PYPROJECT = ROOT / "template" / "pyproject.toml.jinja"
PACKAGE = "llama-cpp-python"
_PIN = re.compile(r'"llama-cpp-python==(?P<version>[0-9][0-9.]*)"')
_FLAGS = re.compile(r'^llama-cpp-python = \{ CMAKE_ARGS = "(?P<flags>[^"]*)" \}$', re.MULTILINE)


def version() -> str:
    """The llama-cpp-python version generated projects pin."""
    match = _PIN.search(TEMPLATE_PYPROJECT.read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit(f"no {PACKAGE}==<version> pin in {TEMPLATE_PYPROJECT}")
    return match["version"]


def cmake_args() -> str:
    """The CMake flags generated projects build llama-cpp-python with."""
    match = _FLAGS.search(TEMPLATE_PYPROJECT.read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit(f"no {PACKAGE} CMAKE_ARGS in {TEMPLATE_PYPROJECT}")
    return match["flags"]


def folder() -> Path:
    """Where the wheel for this version and these flags lives."""
    digest = hashlib.sha256(cmake_args().encode()).hexdigest()[:12]
    return ROOT / "build" / "wheels" / f"{version()}-{digest}"


def wheel(where: Path | None = None) -> Path | None:
    """The built wheel in `where` (this clone's folder by default), if there is one."""
    found = sorted((where or folder()).glob(f"llama_cpp_python-{version()}-*.whl"))
    return found[-1] if found else None


def cache_folder() -> Path | None:
    """The folder in the user's cache for this version and these flags; None when switched off."""
    chosen = os.environ.get("COPIER_LLMOPS_WHEEL_CACHE", "")
    if chosen.lower() in {"off", "0", "no", "false"}:
        return None
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (Path(chosen) if chosen else root / "copier-llmops" / "wheels") / folder().name


def copy_wheel(source: Path, target: Path) -> None:
    """Copy a wheel's folder so that `target` appears whole or not at all."""
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def build() -> Path:
    """Build the wheel unless it exists; returns its folder."""
    target = folder()
    cached = cache_folder()
    if wheel() is not None:
        if cached is not None and wheel(cached) is None:
            keep(target, cached)
        return target
    if cached is not None and wheel(cached) is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_wheel(cached, target)
        sys.stdout.write(f"{PACKAGE}=={version()}: the wheel built earlier, from {cached}\n")
        return target
    prerequisites = ROOT / "tests" / "scripts" / "check-prerequisites.sh"
    if subprocess.run(["bash", str(prerequisites), "build"], check=False).returncode:
        raise SystemExit(1)
    cores = os.cpu_count() or 2
    sys.stdout.write(
        f"Building {PACKAGE}=={version()} once into {target.relative_to(ROOT)}: portable, with "
        f"every CPU variant (8 to 12 minutes on 2 cores; later runs and other clones reuse it).\n"
        f"    CMAKE_ARGS={cmake_args()}\n"
    )
    sys.stdout.flush()
    env = {
        **os.environ,
        "CMAKE_ARGS": cmake_args(),
        # One job more than cores: while one compiler waits on the disk the cores stay busy.
        "CMAKE_BUILD_PARALLEL_LEVEL": str(cores + 1),
    }
    started = time.monotonic()
    partial = target.with_name(target.name + ".partial")
    for leftover in (partial, target):  # an interrupted build
        shutil.rmtree(leftover, ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-cache-dir",
            "--no-deps",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "--wheel-dir",
            str(partial),
            f"{PACKAGE}=={version()}",
        ],
        env=env,
        check=True,
    )
    partial.rename(target)
    sys.stdout.write(f"Built in {time.monotonic() - started:.0f} s.\n")
    if cached is not None:
        keep(target, cached)
    return target


def keep(target: Path, cached: Path) -> None:
    """Keep a copy of the wheel's folder in the user's cache for the next clone."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        copy_wheel(target, cached)
    except OSError as exc:  # a cache that cannot be written costs the next clone a build
        sys.stdout.write(f"(the wheel is not kept in {cached.parent}: {exc})\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--folder"]:  # where the wheel goes, without building it
        sys.stdout.write(f"{folder()}\n")
        raise SystemExit(0)
    try:
        sys.stdout.write(f"{build()}\n")
    except subprocess.CalledProcessError as exc:
        sys.stderr.write(
            f"error: building {PACKAGE} failed ({exc.returncode}); see the compiler output "
            "above. It needs a C/C++ compiler and CMake 3.21+ (Debian/Ubuntu: "
            "sudo apt-get install build-essential cmake).\n"
        )
        raise SystemExit(1) from None
