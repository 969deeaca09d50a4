"""Measured inside a generated project: time per `ask`, with tracing on or off.

Run by ``bench_ops.py`` as ``uv run python ops_inner.py PACKAGE MODEL ROUNDS`` where MODEL is
``fake`` or a GGUF path; TRACING_ENABLED in the environment decides whether spans are recorded
(to a JSONL file) or not at all. Prints one JSON object.
"""

from __future__ import annotations

import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

QUESTIONS = [
    "What port does the staging server use?",
    "When does the release train leave?",
    "In which meeting room is the daily standup?",
    "How quickly must a page be acknowledged?",
]


def main() -> None:
    package, model, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings_mod: Any = importlib.import_module(f"{package}.settings")
    telemetry: Any = importlib.import_module(f"{package}.telemetry")
    ingest: Any = importlib.import_module(f"{package}.ingest")
    rag_mod: Any = importlib.import_module(f"{package}.rag")
    sqlite: Any = importlib.import_module(f"{package}.store.sqlite")
    tokens: Any = importlib.import_module(f"{package}.tokens")
    scratch = Path(tempfile.mkdtemp())
    overrides: dict[str, Any] = {"traces_path": scratch / "traces.jsonl", "llm_threads": 2}
    if model == "fake":
        gateway = importlib.import_module(f"{package}.fake").FakeGateway()
        settings = settings_mod.Settings(**overrides)
        counter = tokens.HeuristicTokenCounter()
    else:
        settings = settings_mod.Settings(
            **overrides, model_runner="embedded", gguf_model_path=Path(model)
        )
        gateway = importlib.import_module(f"{package}.gateway").build_gateway(settings)
        counter = tokens.build_token_counter(settings)
    telemetry.configure_telemetry(settings)
    store = sqlite.SQLiteStore(scratch / "index.sqlite3")
    ingest.Ingestor.from_settings(settings, store, counter, gateway).ingest([Path("data/docs")])
    rag = rag_mod.Rag.from_settings(settings, store, gateway, counter)
    for question in QUESTIONS:  # warm-up: model load, caches
        rag.ask(question)
    samples = []
    for _ in range(rounds):
        for question in QUESTIONS:
            started = time.perf_counter()
            rag.ask(question)
            samples.append((time.perf_counter() - started) * 1000)
    telemetry.flush_telemetry()  # spans are written in batches; count them all
    spans = (scratch / "traces.jsonl").read_text().count("\n") if settings.tracing_enabled else 0
    json.dump(
        {"mean_ms": statistics.fmean(samples), "asks": len(samples), "spans": spans}, sys.stdout
    )


if __name__ == "__main__":
    main()
