"""Tasks Copier runs in the generated project after copy or update.

Run as ``python hooks/tasks.py TASK`` from the project directory. A task that cannot do its
work (no git, no uv, no network) explains what to run by hand and exits 0: the rendered files
are already in place and must not be thrown away because a convenience step failed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def _run(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)


def _warn(message: str) -> None:
    sys.stderr.write(f"copier-llmops: {message}\n")


def init_git(project: Path) -> int:
    """Make the project a git repository on ``main`` unless it already is inside one."""
    if shutil.which("git") is None:
        _warn("git not found: run `git init -b main` yourself to enable the pre-commit hooks.")
        return 0
    inside = _run(["git", "rev-parse", "--is-inside-work-tree"], project)
    if inside.returncode == 0:
        return 0
    result = _run(["git", "init", "--quiet", "--initial-branch=main"], project)
    if result.returncode != 0:
        _warn(f"`git init` failed: {result.stderr.strip()}")
    return 0


def lock(project: Path) -> int:
    """Write or refresh ``uv.lock`` so it matches ``pyproject.toml`` after copy and update.

    Falls back to uv's cache when the network is down, so a workshop machine that has synced
    once can still render a project.
    """
    uv = find_uv()
    if uv is None:
        _warn("uv not found: install it (https://docs.astral.sh/uv/) and run `uv lock`.")
        return 0
    result = _run([uv, "lock", "--quiet"], project)
    if result.returncode != 0:
        offline = _run([uv, "lock", "--quiet", "--offline"], project)
        if offline.returncode != 0:
            _warn(f"`uv lock` failed; fix the cause and run `uv lock`:\n{result.stderr.strip()}")
    return 0


def find_uv() -> str | None:
    """The uv beside the Python running Copier (`uv tool install copier --with uv`), else PATH."""
    beside = Path(sys.executable).with_name("uv")
    if beside.is_file():
        return str(beside)
    return shutil.which("uv")


TASKS: dict[str, Callable[[Path], int]] = {"init-git": init_git, "lock": lock}


def main(argv: Sequence[str]) -> int:
    """Dispatch ``argv[0]`` to a task, run in the current directory."""
    if len(argv) != 1 or argv[0] not in TASKS:
        _warn(f"usage: tasks.py {{{'|'.join(TASKS)}}}")
        return 2
    return TASKS[argv[0]](Path.cwd())


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
