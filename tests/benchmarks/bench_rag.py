"""Benchmark of the generated project's RAG core (`make bench`), figures printed as a table.

Renders the default project into build/bench, then measures, in one run:
ingest throughput on ~1,000 generated documents (chunks/s), lexical retrieval latency p50/p95
at 10k and 100k chunks in the embedded store, and generation tokens/s through the app's
gateway as a ratio to raw llama-cpp-python on the same prompt and model.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import ROOT, prepare_renders, project_env, render, run
from models import tiny_gguf

BENCH_DIR = ROOT / "build" / "bench"
TOPICS = ["deploy", "billing", "onboarding", "security", "storage", "network", "support"]


def write_corpus(folder: Path, documents: int) -> None:
    """Markdown documents with headings and a few paragraphs each."""
    rng = random.Random(11)  # noqa: S311 - synthetic data
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(documents):
        topic = rng.choice(TOPICS)
        sections = []
        for section in range(3):
            words = " ".join(rng.choice(TOPICS) + str(rng.randint(0, 500)) for _ in range(120))
            sections.append(f"## {topic.title()} part {section}\n\n{words}.\n")
        (folder / f"doc{index:04d}.md").write_text(
            f"# Document {index} about {topic}\n\n" + "\n".join(sections), encoding="utf-8"
        )


def main() -> int:
    """Run every measurement and print the figures."""
    if BENCH_DIR.exists():
        shutil.rmtree(BENCH_DIR)
    prepare_renders()
    project = render(BENCH_DIR / "my-rag-app", {})
    env = project_env()
    run(["make", "setup"], project, env)
    gguf = str(tiny_gguf())
    corpus = BENCH_DIR / "corpus"
    write_corpus(corpus, 1000)
    started = time.perf_counter()
    result = run(
        ["uv", "run", "--locked", "my-rag-app", "ingest", str(corpus), "--json"], project, env
    )
    seconds = time.perf_counter() - started
    report = json.loads(result.stdout)
    chunks = int(report.get("chunks_added", 0))
    inner = Path(__file__).with_name("rag_inner.py")
    measured = json.loads(
        run(
            ["uv", "run", "--locked", "python", str(inner), "my_rag_app", gguf], project, env
        ).stdout
    )
    lines = [
        (
            f"ingest: 1000 documents, {chunks} chunks in {seconds:.1f}s "
            f"(process start included): {chunks / seconds:.0f} chunks/s"
        ),
        (
            f"lexical retrieval at 10k chunks: p50 {measured['retrieval_10k']['p50_ms']:.2f} ms, "
            f"p95 {measured['retrieval_10k']['p95_ms']:.2f} ms"
        ),
        (
            f"lexical retrieval at 100k chunks: p50 {measured['retrieval_100k']['p50_ms']:.2f} ms, "
            f"p95 {measured['retrieval_100k']['p95_ms']:.2f} ms"
        ),
        (
            f"generation: {measured['generation']['gateway_tokens_per_s']:.1f} tok/s through the "
            f"gateway vs {measured['generation']['raw_tokens_per_s']:.1f} tok/s raw "
            f"llama-cpp-python: ratio {measured['generation']['ratio']:.2f}"
        ),
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
