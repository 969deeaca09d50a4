"""`make demo`: render the default project into build/demo and run its main job.

Each step prints what it does and how long it took; the project is left in place so you can
``cd`` into it and keep going.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TYPE_CHECKING

from helpers import ROOT, project_env, python_shims, render, run

if TYPE_CHECKING:
    from collections.abc import Callable

DEMO_DIR = ROOT / "build" / "demo"
PROJECT_NAME = "My RAG App"


def step(title: str, action: Callable[[], object]) -> None:
    """Run one step of the demo and say how long it took."""
    sys.stdout.write(f"==> {title}\n")
    sys.stdout.flush()
    started = time.perf_counter()
    action()
    sys.stdout.write(f"    done in {time.perf_counter() - started:.1f}s\n")


def main() -> int:
    """Render, set up and check the default project."""
    project = DEMO_DIR / "my-rag-app"
    env = project_env(python_shims(DEMO_DIR / ".python-shims"))
    if project.exists():
        shutil.rmtree(project)
    step(f"Render the default project into {project}", lambda: render(project, {}))
    step(
        "make setup (uv sync from uv.lock, git hooks)", lambda: run(["make", "setup"], project, env)
    )
    step("make check (ruff, mypy strict, pytest)", lambda: run(["make", "check"], project, env))
    sys.stdout.write(f"\nThe project is in {project}. Try:\n  cd {project} && make help\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
