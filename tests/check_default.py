"""`make check`: the quick gate for a change to the template, in minutes instead of the suite's
half hour. Renders the default project (or the one ANSWERS describes) from the working tree
into build/check, sets it up and runs its own `make check`: ruff, the format check, mypy strict
and its fast tests. The Makefile lints the template's own code first.

    make check                                          # the default project
    make check ANSWERS='with_api=false runners=[hosted]'  # another answer set (YAML values)
    make check ANSWERS='project_name="Ops Desk" vector_store=pgvector'

It proves the rendered code is clean and typed; `make test` still runs everything for real.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
import warnings
from typing import Any

import yaml
from copier.errors import DirtyLocalWarning

from demo import run_steps, step
from helpers import ROOT, prepare_renders, project_env, render, run

CHECK_DIR = ROOT / "build" / "check"


def answers_from(text: str) -> dict[str, Any]:
    """`key=value` pairs, split as a shell would (quote a value with spaces), each value read as
    YAML (`[a, b]`, `false`)."""
    answers: dict[str, Any] = {}
    try:
        pairs = shlex.split(text)
    except ValueError as exc:
        raise SystemExit(f"ANSWERS: {exc} (quote a value with spaces: k='a b')") from None
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"ANSWERS: {pair!r} is not key=value (e.g. with_api=false)")
        try:
            answers[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise SystemExit(f"ANSWERS: the value of {key} is not YAML: {value!r}") from None
    return answers


def main() -> int:
    """Render, set up and check one project; say how long each part took."""
    started = time.perf_counter()
    warnings.filterwarnings("ignore", category=DirtyLocalWarning)  # the change under test
    answers = answers_from(os.environ.get("ANSWERS", ""))
    project = CHECK_DIR / "my-rag-app"
    prepare_renders()
    env = project_env()
    if project.exists():
        shutil.rmtree(project)
    shown = " ".join(f"{k}={v}" for k, v in answers.items()) or "the defaults"
    step(f"Render {shown} into {project}", lambda: render(project, answers))
    step("make setup", lambda: run(["make", "setup"], project, env))
    step(
        "make check (ruff, format, mypy strict, fast tests)",
        lambda: run(["make", "check"], project, env),
    )
    sys.stdout.write(f"Green in {time.perf_counter() - started:.0f} s: {project}\n")
    return 0


if __name__ == "__main__":
    run_steps(main, "The check failed")
