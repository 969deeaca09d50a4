"""The llama-cpp-python wheel that the demo, the tests and the benchmarks install.

PyPI ships llama-cpp-python as source only, and compiling it takes minutes, so it is built once
here and every generated project installs it from this folder (``UV_FIND_LINKS``). It is built
exactly as a generated project would build it: the version pinned in the template's
``pyproject.toml`` and the portable flags of its ``[tool.uv.extra-build-variables]`` (no
``-march=native``; every CPU variant, the best one picked at run time). The folder is named after
the version and a digest of the flags, so a change of flags builds a new wheel instead of reusing
one built with other flags (pip's own wheel cache ignores ``CMAKE_ARGS``; it is switched off).

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


def wheel() -> Path | None:
    """The built wheel, if there is one."""
    found = sorted(folder().glob(f"llama_cpp_python-{version()}-*.whl"))
    return found[-1] if found else None


def build() -> Path:
    """Build the wheel unless it exists; returns its folder."""
    target = folder()
    if wheel() is not None:
        return target
    prerequisites = ROOT / "tests" / "scripts" / "check-prerequisites.sh"
    if subprocess.run(["bash", str(prerequisites), "build"], check=False).returncode:
        raise SystemExit(1)
    cores = os.cpu_count() or 2
    sys.stdout.write(
        f"Building {PACKAGE}=={version()} once into {target.relative_to(ROOT)}: portable, with "
        f"every CPU variant (about 8 minutes on 2 cores; later runs reuse it).\n"
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
    return target


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
