"""Rendering and running generated projects, shared by the template's tests."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import copier
import plumbum

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_VENV_BIN = ROOT / ".venv" / "bin"
# Wheels built once by `make wheels` (llama-cpp-python has only a source release on PyPI).
WHEELHOUSE = ROOT / "build" / "wheels"
PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
# Files that disappear from a listing: build output, caches and local state.
IGNORED_PARTS = frozenset(
    {".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", "__pycache__", "site"},
)


def python_shims(directory: Path) -> Path:
    """Put ``python3.X`` for every supported version on one directory, if this machine has it.

    uv finds interpreters by name on PATH; pyenv's shims answer only for the selected version,
    so link the real interpreters instead. Returns the directory to prepend to PATH.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for version in PYTHON_VERSIONS:
        link = directory / f"python{version}"
        if link.exists():
            continue
        candidates = sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
        found = str(candidates[-1]) if candidates else shutil.which(f"python{version}")
        if found:
            link.symlink_to(found)
    return directory


def use_wheelhouse() -> None:
    """Let uv in this process and its children (Copier's lock task too) use WHEELHOUSE.

    Without it, every generated project builds llama-cpp-python from source, minutes each.
    """
    if any(WHEELHOUSE.glob("*.whl")):
        os.environ["UV_FIND_LINKS"] = str(WHEELHOUSE)
        # Copier runs its tasks with plumbum's copy of the environment, taken when plumbum was
        # imported: without this line the lock task never sees the wheelhouse, and each
        # project's uv.lock points llama-cpp-python at PyPI's source release.
        plumbum.local.env["UV_FIND_LINKS"] = str(WHEELHOUSE)


def project_env(shims: Path) -> dict[str, str]:
    """Environment for commands run inside a generated project: offline-safe and quiet."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PATH"] = os.pathsep.join([str(shims), str(TEMPLATE_VENV_BIN), env.get("PATH", "")])
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    # The chat-page test must run here, not skip: the Makefile installs Chromium.
    env["REQUIRE_BROWSER"] = "1"
    # Likewise the pgvector store tests (Postgres and pgvector come from a dev dependency).
    env["REQUIRE_PGVECTOR"] = "1"
    env.setdefault("GIT_AUTHOR_NAME", "Template Tests")
    env.setdefault("GIT_AUTHOR_EMAIL", "tests@example.com")
    env.setdefault("GIT_COMMITTER_NAME", "Template Tests")
    env.setdefault("GIT_COMMITTER_EMAIL", "tests@example.com")
    return env


def render(
    destination: Path,
    answers: Mapping[str, Any],
    *,
    src: Path = ROOT,
    vcs_ref: str | None = "HEAD",
    skip_tasks: bool = False,
    portable_lock: bool = False,
) -> Path:
    """Render the template with ``answers`` (defaults for the rest) into ``destination``.

    ``portable_lock`` locks without the wheelhouse, as a user's machine would: for projects
    whose ``uv.lock`` must work elsewhere (a container build cannot see ``build/wheels``).
    """
    saved = os.environ.pop("UV_FIND_LINKS", None) if portable_lock else None
    if portable_lock:
        plumbum.local.env.pop("UV_FIND_LINKS", "")
    try:
        copier.run_copy(
            str(src),
            str(destination),
            data=dict(answers),
            defaults=True,
            unsafe=True,
            quiet=True,
            vcs_ref=vcs_ref,
            skip_tasks=skip_tasks,
        )
    finally:
        if saved is not None:
            os.environ["UV_FIND_LINKS"] = plumbum.local.env["UV_FIND_LINKS"] = saved
    return destination


def run(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """Run a command and fail with its whole output when it fails."""
    result = subprocess.run(
        list(args),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        message = (
            f"`{' '.join(args)}` failed in {cwd} with {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-8000:]}\n--- stderr ---\n{result.stderr[-8000:]}"
        )
        raise AssertionError(message)
    return result


def listing(project: Path) -> set[str]:
    """Every file of a project, as POSIX paths relative to it, without caches and .git."""
    return {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and not IGNORED_PARTS.intersection(path.relative_to(project).parts)
    }


def rotate(
    options: Mapping[str, Sequence[Any]],
    *,
    crossed: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Combinations that use every value of every option at least once.

    Options named in ``crossed`` interact, so all their combinations are rendered; the others
    rotate alongside (as cookiecutter-data-science does), which keeps the matrix small.
    """
    crossed_values = [options[name] for name in crossed]
    crosses = [
        dict(zip(crossed, combo, strict=True)) for combo in itertools.product(*crossed_values)
    ]
    if not crosses:
        crosses = [{}]
    rotated = [name for name in options if name not in crossed]
    count = max([len(crosses), *(len(options[name]) for name in rotated)])
    cycles = {name: itertools.cycle(options[name]) for name in rotated}
    cross_cycle = itertools.cycle(crosses)
    return [
        {**next(cross_cycle), **{name: next(cycles[name]) for name in rotated}}
        for _ in range(count)
    ]
