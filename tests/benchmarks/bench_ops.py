"""Benchmark of the generated project's operations layer (`make bench-ops`).

Renders the default project into build/bench-ops, then measures, in one run:
the eval suite's wall time on the tiny real model over the sample cases (process start, model
load and the LLM judge included), and the tracing overhead per `ask`: the mean time of an ask
with spans recorded to the JSONL file divided by the same with TRACING_ENABLED=false, on the
fake model (where tracing is most of the work) and on the tiny real model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from helpers import ROOT, prepare_renders, project_env, render, run
from models import tiny_gguf

BENCH_DIR = ROOT / "build" / "bench-ops"
PACKAGE = "my_rag_app"
EXIT_GATE = 5  # a broken threshold: the run still completed


def per_ask(project: Path, env: dict[str, str], model: str, rounds: int, *, tracing: bool) -> float:
    inner = Path(__file__).with_name("ops_inner.py")
    result = run(
        ["uv", "run", "--locked", "python", str(inner), PACKAGE, model, str(rounds)],
        project,
        {**env, "TRACING_ENABLED": str(tracing).lower()},
    )
    measured = json.loads(result.stdout)
    if tracing and not measured["spans"]:
        raise AssertionError("tracing was on but no span was written")
    return float(measured["mean_ms"])


def main() -> int:
    """Run every measurement and print the figures."""
    if BENCH_DIR.exists():
        shutil.rmtree(BENCH_DIR)
    prepare_renders()
    project = render(BENCH_DIR / "my-rag-app", {})
    env = project_env()
    run(["make", "setup"], project, env)
    gguf = str(tiny_gguf())
    model_env = {**env, "MODEL_RUNNER": "embedded", "GGUF_MODEL_PATH": gguf, "LLM_THREADS": "2"}
    cases = len(yaml.safe_load((project / "evals/cases.yaml").read_text())["cases"])
    timings = {}
    for label, extra in (("with judge", []), ("without judge", ["--no-judge"])):
        started = time.perf_counter()
        result = subprocess.run(
            ["uv", "run", "--locked", "my-rag-app", "eval", *extra, "--reports", "build/b"],
            cwd=project,
            env=model_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        timings[label] = time.perf_counter() - started
        if result.returncode not in {0, EXIT_GATE}:
            raise AssertionError(f"eval failed: {result.stderr[-2000:]}")
    fake_on = per_ask(project, env, "fake", 50, tracing=True)
    fake_off = per_ask(project, env, "fake", 50, tracing=False)
    real_on = per_ask(project, model_env, gguf, 3, tracing=True)
    real_off = per_ask(project, model_env, gguf, 3, tracing=False)
    lines = [
        (
            f"eval on the tiny model, {cases} sample cases: {timings['with judge']:.1f} s with the "
            f"LLM judge, {timings['without judge']:.1f} s without (process start and model load "
            "included)"
        ),
        (
            f"tracing overhead per ask, fake model: {fake_on:.2f} ms traced vs {fake_off:.2f} ms "
            f"untraced: ratio {fake_on / fake_off:.2f}"
        ),
        (
            f"tracing overhead per ask, tiny model: {real_on:.0f} ms traced vs {real_off:.0f} ms "
            f"untraced: ratio {real_on / real_off:.3f}"
        ),
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
