"""Bring the index in line with a documents folder: load, chunk, embed what is new, drop what
is gone. A file whose bytes, chunking and embedding model are unchanged is skipped; a changed
file is re-chunked, and only chunks without a vector are embedded. Every good file is indexed
whatever happens to the others; `rebuild` builds a new index and swaps it in at the end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .. import tracing
from ..errors import AppError, IngestError
from .loaders import Document, LoadError, discover, load

if TYPE_CHECKING:
    from ..llm import Gateway
    from ..store import Store
    from .chunking import Chunker

Progress = Callable[[int, int, str], None]
"""Called with (files done, files in all, the file at hand)."""


@dataclass
class Report:
    """What an ingest did."""

    mode: Literal["hybrid", "lexical"]
    files: int = 0
    indexed: int = 0
    unchanged: int = 0
    chunks_added: int = 0
    chunks_embedded: int = 0
    chunks: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)


@dataclass
class Ingestor:
    """Indexes folders into a store; embeds through the gateway unless it is None (lexical)."""

    store: Store
    chunker: Chunker
    gateway: Gateway | None
    max_bytes: int = 20_000_000
    file_seconds: float = 30.0

    def run(
        self, folder: Path, *, rebuild: bool = False, progress: Progress | None = None
    ) -> Report:
        """Index `folder`; with `rebuild`, into a new index that replaces the old one at the end."""
        if not folder.is_dir():
            raise IngestError(f"{folder} is not a folder: pass one, or set RAG_DOCS_PATH")
        dimensions = self._check_embeddings(check_size=not rebuild)
        with tracing.span("ingest", **{"rag.ingest.folder": str(folder)}) as span:
            if rebuild:
                with self.store.rebuilding() as fresh:
                    report = self._index(fresh, folder, progress)
            else:
                report = self._index(self.store, folder, progress)
            span.update(
                {
                    "rag.ingest.chunks_added": report.chunks_added,
                    "rag.ingest.dimensions": dimensions,
                }
            )
        return report

    def _check_embeddings(self, *, check_size: bool) -> int:
        """Embed a probe before any file: a broken model fails now, with its name and the fix."""
        if self.gateway is None:
            return 0
        try:
            [probe] = self.gateway.embed(["probe"])
        except AppError as exc:
            raise IngestError(
                f"the embedding model {self.gateway.embed_model} does not work: {exc}. Fix it "
                "(`models pull`, or llm.yaml), or index for keyword search only with "
                "RAG_LEXICAL_ONLY=true"
            ) from None
        have = self.store.dimensions()
        if check_size and have is not None and have != len(probe):
            raise IngestError(
                f"the embedding model {self.gateway.embed_model} gives {len(probe)} dimensions "
                f"but the index holds {have}: run `ingest --rebuild` to re-embed everything"
            )
        return len(probe)

    def _index(self, store: Store, folder: Path, progress: Progress | None) -> Report:
        report = Report(mode="lexical" if self.gateway is None else "hybrid")
        prefix = _source_prefix(folder)
        found = list(discover(folder))
        indexed = store.fingerprints()
        seen: set[str] = set()
        for done, (relative, path) in enumerate(found):
            source = f"{prefix}{relative}"
            if progress:
                progress(done, len(found), source)
            report.files += 1
            try:
                if isinstance(path, LoadError):
                    raise path
                document = load(source, path, max_bytes=self.max_bytes, seconds=self.file_seconds)
            except LoadError as exc:
                report.skipped[source] = str(exc)
                continue
            seen.add(source)
            self._index_file(store, document, indexed.get(source), report)
        if progress:
            progress(len(found), len(found), "")
        for source in indexed:
            if source.startswith(prefix) and source not in seen:
                store.delete_source(source)
                report.removed.append(source)
        report.chunks = store.count()
        return report

    def _index_file(
        self, store: Store, document: Document, indexed: str | None, report: Report
    ) -> None:
        """Index a file unless its fingerprint is unchanged; embed only chunks without a vector."""
        fingerprint = self._fingerprint(document.sha256)
        if indexed == fingerprint:
            report.unchanged += 1
            return
        chunks = self.chunker.chunk(document)
        vectors: dict[str, list[float]] = {}
        if self.gateway is not None:
            have = store.vectors_of(document.source)
            todo = [chunk for chunk in chunks if chunk.id not in have]
            embedded = self.gateway.embed([chunk.indexed_text for chunk in todo])
            vectors = dict(zip((chunk.id for chunk in todo), embedded, strict=True))
        report.chunks_added += store.replace_source(document.source, fingerprint, chunks, vectors)
        report.chunks_embedded += len(vectors)
        report.indexed += 1

    def _fingerprint(self, file_sha256: str) -> str:
        """What decides whether a file is indexed again: its bytes, its chunks, its vectors."""
        model = self.gateway.embed_model if self.gateway is not None else "lexical"
        raw = f"{file_sha256}\0{self.chunker.fingerprint()}\0{model}"
        return hashlib.sha256(raw.encode()).hexdigest()


def _source_prefix(folder: Path) -> str:
    """How a folder's files are named in the index: relative to the working directory if
    inside it (`data/docs/guide.md`), else absolute."""
    resolved = folder.resolve()
    try:
        name = resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        name = resolved.as_posix()
    return "" if name == "." else f"{name}/"
