"""Ingest against the splitter alone and against the embedding model alone, and its memory.

Run by bench.py as ``python ingest_inner.py PACKAGE PROJECT CACHE RUNS CHUNKS EMBED_CHUNKS
[RSS_CHUNKS ...]`` with the project's Python, the model settings in the environment.

- Without embeddings: the app's ingest (`Ingestor.run`: discover, read, split at headings and
  by size, hash, write to a fresh SQLite index with its full-text index) on Markdown documents
  of CHUNKS chunks, against semantic-text-splitter alone (`MarkdownSplitter.chunk_indices`, the
  same sizes) on the same documents' text, already in memory.
- With embeddings: the app's ingest of EMBED_CHUNKS chunks with the in-process embedding model,
  against the model alone: `create_embedding` in batches of the gateway's size on the very
  texts the app embeds, with the same `Llama` (the app's loader, the app's options).
- Memory: peak RSS of `ingest --json` (a process of its own, keyword index only) on corpora of
  RSS_CHUNKS chunks, with its chunks/s including process start.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import Corpus, documents
from gen_inner import project_command
from measure import emit, in_turn

EMBED_BATCH = 32


def corpus_folder(cache: Path, chunks: int) -> Path:
    """Markdown documents of about `chunks` chunks, written once."""
    folder = cache / f"corpus-{chunks}"
    if not (folder / ".done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        corpus = Corpus()
        for name, text in documents(corpus, chunks):
            (folder / name).write_text(text, encoding="utf-8")
        (folder / ".done").touch()
    return folder


def main() -> None:  # noqa: PLR0915 - one measurement, read top to bottom
    package, project, cache = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    runs, chunks, embed_chunks = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    rss_sizes = [int(size) for size in sys.argv[7:]]
    from semantic_text_splitter import MarkdownSplitter  # noqa: PLC0415

    config = importlib.import_module(f"{package}.config")
    chunking = importlib.import_module(f"{package}.ingest.chunking")
    pipeline = importlib.import_module(f"{package}.ingest.pipeline")
    loaders = importlib.import_module(f"{package}.ingest.loaders")
    sqlite_module = importlib.import_module(f"{package}.store.sqlite")
    llm = importlib.import_module(f"{package}.llm")
    inprocess = importlib.import_module(f"{package}.llm.runners.inprocess")

    settings = config.load_settings()
    chunker = chunking.Chunker(
        settings.retrieval.chunk_tokens, settings.retrieval.chunk_overlap_tokens
    )
    capacity = chunker.max_tokens * chunking.CHARS_PER_TOKEN
    overlap = min(chunker.overlap_tokens, chunker.max_tokens // 2) * chunking.CHARS_PER_TOKEN
    folder = corpus_folder(cache, chunks)
    texts = [path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.md"))]

    def splitter_alone() -> float:
        started = time.perf_counter()
        splitter = MarkdownSplitter(capacity, overlap=overlap)
        produced = sum(len(splitter.chunk_indices(text)) for text in texts)
        return produced / (time.perf_counter() - started)

    def app_ingest(folder: Path, gateway: Any = None) -> float:  # noqa: ANN401
        with tempfile.TemporaryDirectory() as scratch:
            store = sqlite_module.SQLiteStore(Path(scratch) / "index.sqlite3")
            ingestor = pipeline.Ingestor.from_settings(settings, store, gateway)
            started = time.perf_counter()
            report = ingestor.run(folder)
            seconds = time.perf_counter() - started
            store.close()
        return float(report.chunks_added) / seconds

    lexical: list[float] = []
    split: list[float] = []
    for run in range(runs):
        in_turn(
            run, lambda: lexical.append(app_ingest(folder)), lambda: split.append(splitter_alone())
        )

    # With embeddings: a small corpus, the real embedding model, in process.
    small = corpus_folder(cache, embed_chunks)
    gateway = llm.Gateway(settings)
    info = gateway.embedding
    embedded_texts = []
    for path in sorted(small.glob("*.md")):
        document = loaders.load(path.name, path, max_bytes=10**7, seconds=30)
        embedded_texts += [info.document_prefix + c.indexed_text for c in chunker.chunk(document)]
    params = gateway.embeds[0].litellm_params
    llama, _ = inprocess.load(
        inprocess.LoadOptions.of(params, embedding=True), str(params.get("cpu_backend") or "auto")
    )

    def model_alone() -> float:
        started = time.perf_counter()
        for start in range(0, len(embedded_texts), EMBED_BATCH):
            llama.create_embedding(embedded_texts[start : start + EMBED_BATCH])
        return len(embedded_texts) / (time.perf_counter() - started)

    model_alone()  # warm up
    hybrid: list[float] = []
    model: list[float] = []
    for run in range(runs):
        in_turn(
            run,
            lambda: hybrid.append(app_ingest(small, gateway)),
            lambda: model.append(model_alone()),
        )

    # Memory: the CLI, a process of its own per corpus size (keyword index only).
    command = str(Path(sys.executable).parent / project_command(project))
    memory = []
    for size in rss_sizes:
        big = corpus_folder(cache, size)
        with tempfile.TemporaryDirectory() as scratch:
            env = {
                **os.environ,
                "RAG_LEXICAL_ONLY": "true",
                "RAG_INDEX_PATH": str(Path(scratch) / "index.sqlite3"),
            }
            output = Path(scratch) / "report.json"
            started = time.perf_counter()
            with output.open("wb") as sink:
                process = subprocess.Popen(
                    [command, "ingest", str(big), "--json"],
                    stdout=sink, stderr=subprocess.DEVNULL, env=env,
                )  # fmt: skip
                _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode != 0:
                raise RuntimeError(f"ingest of {big} failed with {process.returncode}")
            report = json.loads(output.read_text())
            index_mb = sum(p.stat().st_size for p in Path(scratch).glob("index*")) / 1e6
        memory.append(
            {
                "chunks": report["chunks_added"],
                "seconds": seconds,
                "peak_rss_mb": usage.ru_maxrss / 1024,
                "index_mb": index_mb,
            }
        )
    emit(
        {
            "documents": len(texts),
            "lexical_chunks_s": lexical,
            "splitter_chunks_s": split,
            "embedded_chunks": len(embedded_texts),
            "embed_model": gateway.embed_model,
            "hybrid_chunks_s": hybrid,
            "model_chunks_s": model,
            "memory": memory,
        }
    )


if __name__ == "__main__":
    main()
