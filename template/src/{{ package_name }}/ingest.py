"""Bring the index in line with the files: load, chunk, embed what is new, drop what is gone.

Re-ingest is incremental at two levels. A file whose bytes, chunking configuration and
embedding mode are unchanged is skipped without being chunked. A changed file is re-chunked,
but only chunks whose content hash is new are inserted and embedded (chunk ids derive from
content, so an edit in one section leaves the others alone). Files that disappeared, or that
now fail to load, leave the index. Running ingest twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .chunking import Chunker, ChunkingConfig, FolderConfigs
from .documents import load_documents
from .tracing import get_tracer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .chunking import Chunk
    from .documents import Document, Skipped
    from .gateway import Gateway
    from .settings import Settings
    from .store import Store

logger = logging.getLogger(__name__)

Phase = Literal["load", "index"]
Progress = Callable[[Phase, str, int, int], None]
"""Called as (phase, current item, items done, items total); total is 0 when unknown."""


@dataclass
class IngestReport:
    """What one ingest run did."""

    loaded: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    files_unchanged: int = 0
    files_indexed: int = 0
    chunks_added: int = 0
    chunks_unchanged: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0
    sources_removed: list[str] = field(default_factory=list)
    total_chunks: int = 0
    vectors: bool = False
    note: str = ""


class Ingestor:
    """Ingests paths into a store, embedding through the gateway when it can."""

    def __init__(
        self,
        store: Store,
        chunker: Chunker,
        *,
        gateway: Gateway | None = None,
        max_document_bytes: int = 20_000_000,
        config_filename: str = ".chunking.toml",
        embed_batch: int = 32,
        base: Path | None = None,
    ) -> None:
        self.store = store
        self.chunker = chunker
        self.gateway = gateway
        self.max_document_bytes = max_document_bytes
        self.config_filename = config_filename
        self.embed_batch = embed_batch
        self.base = base

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: Store,
        count_tokens: Callable[[str], int],
        gateway: Gateway | None = None,
    ) -> Ingestor:
        config = ChunkingConfig(
            strategy=settings.chunk_strategy,
            max_tokens=settings.chunk_max_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
        )
        return cls(
            store,
            Chunker(count_tokens, config),
            gateway=gateway,
            max_document_bytes=settings.max_document_bytes,
            config_filename=settings.chunk_config_filename,
        )

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        rebuild: bool = False,
        prune: bool = True,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Index ``paths`` (files or folders); with ``prune``, drop vanished files under them."""
        with get_tracer().start_as_current_span("rag.ingest") as span:
            report = self._ingest(paths, rebuild=rebuild, prune=prune, progress=progress)
            span.set_attribute("rag.ingest.loaded", report.loaded)
            span.set_attribute("rag.ingest.skipped", len(report.skipped))
            span.set_attribute("rag.ingest.chunks_added", report.chunks_added)
            span.set_attribute("rag.ingest.chunks_embedded", report.chunks_embedded)
            span.set_attribute("rag.ingest.total_chunks", report.total_chunks)
            return report

    def _ingest(
        self,
        paths: Sequence[Path],
        *,
        rebuild: bool,
        prune: bool,
        progress: Progress | None,
    ) -> IngestReport:
        report = IngestReport()
        embed = self.gateway is not None and self.gateway.embeddings_enabled
        if rebuild:
            self.store.clear()
        loaded = load_documents(
            paths,
            max_bytes=self.max_document_bytes,
            base=self.base,
            skip_names=frozenset({self.config_filename}),
            on_file=(lambda p: progress("load", p.name, 0, 0)) if progress else None,
        )
        report.loaded = len(loaded.documents)
        report.skipped = loaded.skipped
        report.missing = loaded.missing
        # Fail on a bad override file before anything is written.
        folders = FolderConfigs(self.chunker.config, self.config_filename)
        configs = [
            folders.for_file(doc.path, _root_of(doc.path, paths)) for doc in loaded.documents
        ]
        indexed = self.store.sources()
        for done, (doc, config) in enumerate(zip(loaded.documents, configs, strict=True)):
            if progress:
                progress("index", doc.source, done, len(loaded.documents))
            embed = self._index(doc, config, indexed.get(doc.source), embed=embed, report=report)
        if progress:
            progress("index", "", len(loaded.documents), len(loaded.documents))
        if prune:
            seen = {doc.source for doc in loaded.documents}
            for source in sorted(indexed):
                if source not in seen and self._in_scope(source, paths):
                    report.chunks_removed += self.store.delete_source(source)
                    report.sources_removed.append(source)
        report.vectors = embed
        report.total_chunks = self.store.count()
        return report

    def _index(
        self,
        doc: Document,
        config: ChunkingConfig,
        indexed_hash: str | None,
        *,
        embed: bool,
        report: IngestReport,
    ) -> bool:
        """Index one document; returns whether embedding still works (for the next one)."""
        fingerprint = _fingerprint(doc, config, vectors=embed)
        if indexed_hash == fingerprint:
            report.files_unchanged += 1
            report.chunks_unchanged += len(self.store.chunk_state(doc.source))
            return embed
        with get_tracer().start_as_current_span("rag.chunk") as span:
            chunks = self.chunker.chunk(doc, config)
            span.set_attribute("rag.source", doc.source)
            span.set_attribute("rag.chunks", len(chunks))
        vectors: dict[str, list[float]] = {}
        if embed:
            state = self.store.chunk_state(doc.source)
            todo = [chunk for chunk in chunks if not state.get(chunk.id, False)]
            try:
                vectors = self._embed(todo)
            except Exception as exc:  # noqa: BLE001 - the index stays usable lexically
                report.note = (
                    f"embedding failed ({type(exc).__name__}: {exc}); the rest was indexed "
                    "for keyword search only: run ingest again once the model works"
                )
                logger.warning("%s", report.note)
                embed = False
                fingerprint = _fingerprint(doc, config, vectors=False)
        result = self.store.upsert(doc.source, fingerprint, chunks, vectors)
        report.files_indexed += 1
        report.chunks_added += result.added
        report.chunks_unchanged += result.unchanged
        report.chunks_removed += result.removed
        report.chunks_embedded += result.embedded
        return embed

    def _embed(self, chunks: Sequence[Chunk]) -> dict[str, list[float]]:
        if self.gateway is None or not chunks:
            return {}
        vectors: dict[str, list[float]] = {}
        for start in range(0, len(chunks), self.embed_batch):
            batch = chunks[start : start + self.embed_batch]
            with get_tracer().start_as_current_span("rag.embed") as span:
                span.set_attribute("rag.embed.texts", len(batch))
                embedded = self.gateway.embed([chunk.indexed_text for chunk in batch])
            if len(embedded) != len(batch):
                raise ValueError(f"asked for {len(batch)} embeddings, got {len(embedded)}")
            vectors.update(
                {chunk.id: vector for chunk, vector in zip(batch, embedded, strict=True)}
            )
        return vectors

    def _in_scope(self, source: str, paths: Sequence[Path]) -> bool:
        """Whether an indexed source lies under one of the paths being ingested."""
        location = Path(source)
        if not location.is_absolute():
            location = (self.base or Path.cwd()).resolve() / location
        for path in paths:
            root = path.resolve()
            if location == root or location.is_relative_to(root):
                return True
        return False


def _root_of(path: Path, roots: Sequence[Path]) -> Path:
    """The ingest root a file was found under: per-folder overrides stop there."""
    resolved = path.resolve()
    for root in roots:
        candidate = root.resolve()
        if candidate.is_dir() and resolved.is_relative_to(candidate):
            return candidate
    return resolved.parent


def _fingerprint(doc: Document, config: ChunkingConfig, *, vectors: bool) -> str:
    """What decides whether a file must be re-indexed: its bytes, its chunking, its vectors."""
    mode = "vectors" if vectors else "lexical"
    raw = f"{doc.sha256}\x00{config.fingerprint()}\x00{mode}"
    return hashlib.sha256(raw.encode()).hexdigest()


def default_paths(settings: Settings) -> list[Path]:
    """What ``ingest`` indexes when given no path."""
    return [settings.docs_path]
