"""`make bench`: the generated project's performance, every figure next to its reference.

Renders the default project (and a pgvector one) into build/bench, then measures, in one run on
this machine, each figure against what it is built on, so that the ratio means something on a
shared, noisy machine:

- generation through `ask` (API, streamed; CLI, a process per answer) against raw
  llama-cpp-python on the same messages, model and settings: tokens/s and time to first token
  (gen_inner.py);
- hybrid retrieval at 10k, 100k and 1M chunks (768-dimension vectors) against the full-text query
  alone and the vector search alone, in SQLite; the same in pgvector where Postgres runs
  (retrieval_inner.py);
- ingest against the splitter alone, and with embeddings against the embedding model alone;
  peak RSS of ingest (ingest_inner.py);
- the API under 1, 4 and 16 concurrent users against the llama.cpp server it calls, called
  directly (load_inner.py);
- peak RSS of a serving app on the 100k and 1M indexes (serve_inner.py).

The models are the test models (tests/models.py): SmolLM2-135M-Instruct answers and
all-MiniLM-L6-v2 embeds. Settings: BENCH_SCALES (chunk counts, default 10000,100000; 1000000
adds the 1M index, whose first build takes long), BENCH_PG_SCALES (default 10000,100000),
BENCH_ROUNDS (generation rounds, default 3), BENCH_RUNS (ingest runs, default 3), BENCH_ONLY
(sections to run; default generation, retrieval, ingest, load, memory; pgvector on request).
LLM_THREADS sets the threads of every in-process model on both sides (default: the app's own,
every core to embed and one fewer to generate; the tests' 2 is not used here).
Results: printed, and written to build/bench/results.json and build/bench/results.md.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import ROOT, postgres, prepare_renders, project_env, render, run
from models import model_env

if TYPE_CHECKING:
    from collections.abc import Callable

BENCH_DIR = ROOT / "build" / "bench"
CACHE = BENCH_DIR / "cache"
HERE = Path(__file__).resolve().parent
PACKAGE = "my_rag_app"
SECTIONS = ("generation", "retrieval", "ingest", "load", "memory", "pgvector")
DEFAULT_SECTIONS = SECTIONS[:-1]  # pgvector renders and sets up a second project: asked for
HOUR = 3600
INGEST_CHUNKS = 20_000
EMBED_CHUNKS = 400
USERS = (1, 4, 16)
# Environment variables that change what is measured, shown in the command line of the table.
SETTINGS = ("BENCH_", "LLM_THREADS")


def setting(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = platform.processor()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def inner(
    project: Path, env: dict[str, str], script: str, *args: object, timeout: float = 2 * HOUR
) -> dict[str, Any]:
    """Run a measurement script with the project's Python; its result is its last line."""
    python = str(project / ".venv" / "bin" / "python")
    started = time.perf_counter()
    result = run([python, str(HERE / script), *map(str, args)], project, env, timeout=timeout)
    sys.stderr.write(
        f"  {script} {' '.join(map(str, args[:1]))}: {time.perf_counter() - started:.0f} s\n"
    )
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def setup(name: str, answers: dict[str, Any], env: dict[str, str]) -> Path:
    project = BENCH_DIR / name
    if project.exists():
        shutil.rmtree(project)
    render(project, answers)
    run(["make", "setup"], project, env)
    return project


def main() -> int:
    only = set(setting("BENCH_ONLY", ",".join(DEFAULT_SECTIONS)).split(","))
    scales = [int(s) for s in setting("BENCH_SCALES", "10000,100000").split(",")]
    pg_scales = [int(s) for s in setting("BENCH_PG_SCALES", "10000,100000").split(",")]
    rounds = int(setting("BENCH_ROUNDS", "3"))
    runs = int(setting("BENCH_RUNS", "3"))
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": os.getloadavg(),
        "command": " ".join(
            [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith(SETTINGS)]
            + ["make bench"]
        ),
        "settings": {"scales": scales, "pg_scales": pg_scales, "rounds": rounds, "runs": runs},
    }
    sys.stderr.write(f"load average before: {results['load_before']}\n")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    prepare_renders()
    env = {**project_env(), **model_env(), "LLM_MAX_ANSWER_TOKENS": "160"}
    env.pop("LLM_THREADS")  # the app's default, unless chosen
    if threads := os.environ.get("LLM_THREADS"):
        env["LLM_THREADS"] = threads
    project = setup("my-rag-app", {}, env)
    run([".venv/bin/my-rag-app", "ingest", "--json"], project, env)

    sections: dict[str, Callable[[], Any]] = {
        "generation": lambda: inner(project, env, "gen_inner.py", PACKAGE, project, rounds),
        "retrieval": lambda: [
            inner(project, env, "retrieval_inner.py", PACKAGE, "sqlite", n, CACHE) for n in scales
        ],
        "ingest": lambda: inner(
            project,
            env,
            "ingest_inner.py",
            PACKAGE,
            project,
            CACHE,
            runs,
            INGEST_CHUNKS,
            EMBED_CHUNKS,
            *(n for n in scales if n >= 100_000),
        ),
        "load": lambda: inner(
            project,
            {**env, "LLM_MAX_ANSWER_TOKENS": "48"},
            "load_inner.py",
            PACKAGE,
            project,
            *USERS,
        ),
        "memory": lambda: [
            inner(
                project,
                {**env, "LLM_MAX_ANSWER_TOKENS": "16"},
                "serve_inner.py",
                PACKAGE,
                stores[-1],
                n,
            )
            for n in scales
            if n >= 100_000 and (stores := sorted(CACHE.glob(f"sqlite-{n}-768-*.sqlite3")))
        ],
        "pgvector": lambda: pgvector(env, pg_scales),
    }
    for name, measure in sections.items():
        if name in only:
            try:
                results[name] = measure()
            except (AssertionError, subprocess.SubprocessError, ValueError) as exc:
                # One broken section leaves the others' figures: the table says what failed.
                results[name] = f"did not run: {str(exc).strip().splitlines()[0][:300]}"
                sys.stderr.write(f"{name} failed:\n{exc}\n")

    results["load_after"] = os.getloadavg()
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    table = report(results)
    (BENCH_DIR / "results.json").write_text(json.dumps(results, indent=2))
    (BENCH_DIR / "results.md").write_text(table)
    sys.stdout.write(table)
    return 0


def pgvector(env: dict[str, str], scales: list[int]) -> list[dict[str, Any]] | str:
    """The retrieval figures on a pgvector project, with the Postgres of its dev dependency."""
    project = setup("pg-app", {"vector_store": "pgvector"}, env)
    try:
        with postgres(project, env) as dsn:
            pg_env = {**env, "PGVECTOR_DSN": dsn}
            return [
                inner(project, pg_env, "retrieval_inner.py", PACKAGE, "pgvector", n, CACHE)
                for n in scales
            ]
    except (AssertionError, subprocess.SubprocessError) as exc:
        return f"pgvector did not run here: {str(exc).splitlines()[0]}"


def median(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else float("nan")


def report(results: dict[str, Any]) -> str:  # noqa: C901 - one table, in order
    """The figures as a Markdown table: each next to its reference, with the ratio."""
    m = results["machine"]
    lines = [
        (
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
            f"Linux {m['kernel']}; load average before {_load(results['load_before'])}, "
            f"after {_load(results['load_after'])}. {results['started']}, `{results['command']}`."
        ),
        "",
        "| figure | app | reference | ratio |",
        "| --- | --- | --- | --- |",
    ]

    def row(figure: str, app: str, reference: str, ratio: str) -> None:
        lines.append(f"| {figure} | {app} | {reference} | {ratio} |")

    for name in SECTIONS:
        if isinstance(results.get(name), str):
            row(name, results[name], "", "")
    gen = results.get("generation")
    if isinstance(gen, dict):
        api = [r["tok_s"] for r in gen["api"]]
        raw = [r["tok_s"] for r in gen["raw"]]
        tokens = [r["tokens"] for r in gen["api"]]
        what = (
            f"{gen['model']}, {gen['threads']} threads, answers of {min(tokens)}-{max(tokens)} "
            f"tokens, {len(api)} answers each"
        )
        row(
            f"generation, API streamed ({what})",
            f"{median(api):.1f} tokens/s",
            f"{median(raw):.1f} tokens/s raw llama-cpp-python",
            f"{median(api) / median(raw):.2f}",
        )
        api_ttft = median([r["ttft_ms"] for r in gen["api"]])
        raw_ttft = median([r["ttft_ms"] for r in gen["raw"]])
        row(
            "time to first token, API streamed (request to first token event)",
            f"{api_ttft:.0f} ms",
            f"{raw_ttft:.0f} ms raw",
            f"+{api_ttft - raw_ttft:.0f} ms",
        )
        n = gen["cli_tokens"]
        cli = [(n - 1) / (r["last_s"] - r["first_s"]) for r in gen["cli"] if r["last_s"]]
        raw_cli = [(n - 1) / (r["last_s"] - r["first_s"]) for r in gen["raw_cli"] if r["last_s"]]
        row(
            f"generation, CLI `ask --stream` ({len(gen['cli'])} runs, {n} tokens)",
            f"{median(cli):.1f} tokens/s",
            f"{median(raw_cli):.1f} tokens/s raw, fresh process",
            f"{median(cli) / median(raw_cli):.2f}",
        )
        cli_first = median([r["first_s"] for r in gen["cli"]])
        raw_first = median([r["first_s"] for r in gen["raw_cli"]])
        row(
            "`ask --stream`: process start to first token (imports, model loads, retrieval)",
            f"{cli_first:.2f} s",
            f"{raw_first:.2f} s raw llama-cpp-python, fresh process",
            f"+{cli_first - raw_first:.2f} s ({cli_first / raw_first:.1f}x)",
        )
        pairs = gen.get("followups") or []
        if pairs:
            first_ms = median([p["first"]["ttft_ms"] for p in pairs])
            follow_ms = median([p["followup"]["ttft_ms"] for p in pairs])
            rewritten = pairs[-1]["followup"]["rewritten"]
            row(
                f"time to first token of a follow-up, API streamed ({len(pairs)} pairs; searched "
                f"for as {rewritten!r})",
                f"{follow_ms:.0f} ms",
                f"{first_ms:.0f} ms a first question",
                f"+{follow_ms - first_ms:.0f} ms ({follow_ms / first_ms:.2f}x)",
            )
        if not gen["same_text"]:
            lines.append("| (the app's and raw answers differed in text) | | | |")
    for name, label in (("retrieval", "SQLite"), ("pgvector", "pgvector")):
        measured = results.get(name)
        for r in measured if isinstance(measured, list) else []:
            h, k, v = r["hybrid"], r["keyword"], r["vector"]
            row(
                f"hybrid retrieval, {label}, {r['chunks']:,} chunks, {r['dims']} dims, p50 / p95 "
                f"({h['n']} queries; vector recall@20 {r['recall_at_20']:.2f})",
                f"{h['p50']:.1f} / {h['p95']:.1f} ms",
                f"full-text alone {k['p50']:.1f} / {k['p95']:.1f} ms; vector alone "
                f"{v['p50']:.1f} / {v['p95']:.1f} ms",
                f"{h['p50'] / (k['p50'] + v['p50']):.2f} of the sum at p50",
            )
    ingest = results.get("ingest")
    if isinstance(ingest, dict):
        lex, split = median(ingest["lexical_chunks_s"]), median(ingest["splitter_chunks_s"])
        row(
            f"ingest without embeddings ({ingest['documents']:,} Markdown files, "
            f"{len(ingest['lexical_chunks_s'])} runs)",
            f"{lex:,.0f} chunks/s",
            f"{split:,.0f} chunks/s semantic-text-splitter alone",
            f"{lex / split:.2f}",
        )
        hyb, model = median(ingest["hybrid_chunks_s"]), median(ingest["model_chunks_s"])
        row(
            f"ingest with embeddings ({ingest['embedded_chunks']} chunks, {ingest['embed_model']}, "
            f"{len(ingest['hybrid_chunks_s'])} runs)",
            f"{hyb:,.1f} chunks/s",
            f"{model:,.1f} chunks/s the model alone, batches of 32",
            f"{hyb / model:.2f}",
        )
        for mem in ingest["memory"]:
            row(
                f"ingest peak RSS, {mem['chunks']:,} chunks (CLI, keyword index, "
                f"{mem['index_mb']:,.0f} MB index)",
                f"{mem['peak_rss_mb']:,.0f} MB",
                f"{mem['chunks'] / mem['seconds']:,.0f} chunks/s with process start",
                "",
            )
    load = results.get("load")
    if isinstance(load, dict):
        sides = {(r["side"], r["users"]): r for r in load["results"]}
        for users in sorted({r["users"] for r in load["results"]}):
            app, direct = sides[("app", users)], sides[("direct", users)]
            row(
                f"API under load, {users} users, {app['requests']} requests, answers of "
                f"{load['max_tokens']} tokens at most; answers/s, p95",
                f"{app['answers_s']:.2f}/s, p95 {app['latency_ms']['p95'] / 1000:.2f} s",
                f"{direct['answers_s']:.2f}/s, p95 {direct['latency_ms']['p95'] / 1000:.2f} s "
                "llama_cpp.server called directly",
                f"{app['answers_s'] / direct['answers_s']:.2f}",
            )
    memory = results.get("memory")
    for mem in memory if isinstance(memory, list) else []:
        row(
            f"serving app peak RSS, {mem['chunks']:,} chunks, 768 dims ({mem['index_mb']:,.0f} MB "
            "index, models loaded, 10 answers)",
            f"{mem['peak_rss_mb']:,.0f} MB",
            f"{mem['after_start_mb']:,.0f} MB after start, "
            f"{mem['after_first_answer_mb']:,.0f} MB after the first answer",
            "",
        )
    return "\n".join(lines) + "\n"


def _load(values: list[float] | tuple[float, ...]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    raise SystemExit(main())
