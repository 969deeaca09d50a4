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


def protect_secrets(project: Path) -> int:
    """`.env` may hold keys: readable and writable by its owner only (0600)."""
    env_file = project / ".env"
    if env_file.is_file():
        env_file.chmod(0o600)
    return 0


def is_update_replay(project: Path) -> bool:
    """True in the scratch copies Copier renders of the old and new template during an update.

    The lock file belongs to the real project only: locking in those copies would put
    ``uv.lock`` in Copier's three-way merge, where it conflicts with the team's own lock.
    """
    return any(
        part.startswith(("copier._main.old_copy.", "copier._main.new_copy."))
        for part in project.parts
    )


def lock(project: Path) -> int:
    """Write or refresh ``uv.lock`` so it matches ``pyproject.toml`` after copy and update.

    Falls back to uv's cache when the network is down, so a workshop machine that has synced
    once can still render a project.
    """
    if is_update_replay(project):
        return 0
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


# The generated project's ruff (pyproject.toml.jinja pins the same version; a test checks it).
RUFF = "ruff==0.17.5"


def format_code(project: Path) -> int:
    """Format the rendered code with the project's own ruff settings.

    The template's code is formatted for one package name; a longer or shorter name moves
    imports past the line limit or changes their order. Runs in Copier's update replays too,
    so the old and new renders it diffs are formatted the same way as the project was.
    """
    uv = find_uv()
    if uv is None:
        _warn("uv not found: run `make format` once uv is installed.")
        return 0
    ruff = [uv, "run", "--no-project", "--quiet", "--with", RUFF, "ruff"]
    for args in (["format", "--quiet", "."], ["check", "--fix", "--select", "I", "--quiet", "."]):
        result = _run([*ruff, *args], project)
        if result.returncode != 0:
            _warn(f"`ruff {args[0]}` failed; run `make format`:\n{result.stderr.strip()}")
            return 0
    return 0


def find_uv() -> str | None:
    """The uv beside the Python running Copier (`uv tool install copier --with uv`), else PATH."""
    beside = Path(sys.executable).with_name("uv")
    if beside.is_file():
        return str(beside)
    return shutil.which("uv")


TASKS: dict[str, Callable[[Path], int]] = {
    "init-git": init_git,
    "protect-secrets": protect_secrets,
    "format": format_code,
    "lock": lock,
}


def main(argv: Sequence[str]) -> int:
    """Dispatch ``argv[0]`` to a task, run in the current directory."""
    if len(argv) != 1 or argv[0] not in TASKS:
        _warn(f"usage: tasks.py {{{'|'.join(TASKS)}}}")
        return 2
    return TASKS[argv[0]](Path.cwd())


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
