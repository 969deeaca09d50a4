"""Measured inside a generated project (its own Python): retrieval latency and generation speed.

Run by ``bench_rag.py`` as ``uv run python rag_inner.py PACKAGE GGUF``; prints one JSON object.
"""

from __future__ import annotations

import importlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VOCABULARY = [f"term{i}" for i in range(5000)]
WORDS_PER_CHUNK = 60
QUESTIONS = [
    "Which term0 mentions term1 and term2?",
    "term10 term20 term30",
    "What does term400 say about term4000?",
    "term4999",
    'Is "term77" -term78 AND term79?',
]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def retrieval_latency(package: str, n_chunks: int) -> dict[str, float]:
    """Lexical search p50/p95 (ms) on an embedded store of ``n_chunks`` Zipf-like chunks."""
    chunking: Any = importlib.import_module(f"{package}.chunking")
    sqlite: Any = importlib.import_module(f"{package}.store.sqlite")
    rng = random.Random(7)  # noqa: S311 - synthetic data, not security
    weights = [1.0 / rank for rank in range(1, len(VOCABULARY) + 1)]
    with tempfile.TemporaryDirectory() as scratch:
        store = sqlite.SQLiteStore(Path(scratch) / "bench.sqlite3")
        for file_index in range(n_chunks // 100):
            source = f"docs/file{file_index}.md"
            chunks = []
            for i in range(100):
                text = " ".join(rng.choices(VOCABULARY, weights, k=WORDS_PER_CHUNK))
                digest = chunking.content_hash("Heading", text)
                chunks.append(
                    chunking.Chunk(
                        chunking.chunk_id(source, digest, 0),
                        source,
                        i,
                        0,
                        len(text),
                        "Heading",
                        text,
                        digest,
                        WORDS_PER_CHUNK,
                    )
                )
            store.upsert(source, f"h{file_index}", chunks, {})
        samples = []
        for _ in range(20):
            for question in QUESTIONS:
                started = time.perf_counter()
                store.lexical_search(question, 20)
                samples.append((time.perf_counter() - started) * 1000)
        store.close()
    return {"p50_ms": statistics.median(samples), "p95_ms": percentile(samples, 0.95)}


def generation_speed(package: str, gguf: str) -> dict[str, float]:
    """Tokens/s through the app's gateway vs raw llama-cpp-python, same prompt and model."""
    settings_module: Any = importlib.import_module(f"{package}.settings")
    gateway_module: Any = importlib.import_module(f"{package}.gateway")
    prompts: Any = importlib.import_module(f"{package}.prompts")
    from llama_cpp import Llama  # noqa: PLC0415 - the project's dependency, not ours

    text = (
        "[1] Staging runs on port 8443; production on 443.\n\n"
        "Question: Describe the staging and production environments in detail.\nAnswer:"
    )
    prompt = prompts.Prompt(messages=(), completion=text, stop=("\n\n",), max_tokens=96)
    settings = settings_module.Settings(
        GGUF_MODEL_PATH=gguf, MODEL_RUNNER="embedded", PROMPT_STYLE="completion", LLM_THREADS=2
    )
    gateway = gateway_module.build_gateway(settings)
    gateway.generate(prompt)  # load the model once
    through: list[float] = []
    for _ in range(3):
        started = time.perf_counter()
        result = gateway.generate(prompt)
        through.append(result.usage.completion_tokens / (time.perf_counter() - started))
    raw_model = Llama(model_path=gguf, n_ctx=4096, n_threads=2, verbose=False)
    raw: list[float] = []
    for _ in range(3):
        started = time.perf_counter()
        out = raw_model.create_completion(text, max_tokens=96, temperature=0.0, stop=["\n\n"])
        raw.append(out["usage"]["completion_tokens"] / (time.perf_counter() - started))
    return {
        "gateway_tokens_per_s": statistics.median(through),
        "raw_tokens_per_s": statistics.median(raw),
        "ratio": statistics.median(through) / statistics.median(raw),
    }


def main() -> int:
    package, gguf = sys.argv[1], sys.argv[2]
    report = {
        "retrieval_10k": retrieval_latency(package, 10_000),
        "retrieval_100k": retrieval_latency(package, 100_000),
        "generation": generation_speed(package, gguf),
    }
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
