"""Bring the index in line with a documents folder: load, chunk, embed what is new, drop what
is gone. A file whose bytes, chunking and embedding model are unchanged is skipped before it is
parsed; a changed file is re-chunked, and only chunks without a vector are embedded.

One bad file never stops an ingest: whatever reading, parsing or chunking one file raises makes
it a skipped file with a one-line reason, and the others are indexed. What is about the whole job
(the embedding model fails, the vector size does not match the index, the index cannot be
written) stops it with its message.

Time: reading, parsing and chunking a file share one budget (`RAG_FILE_SECONDS`): a file that
takes longer is skipped, whatever its parser or its punctuation. Embedding runs at the model's
speed, each call bounded by the model's timeout, in steps that report progress; a file's chunks
are bounded by the size cap. Progress is committed file by file, and within a long file every
`checkpoint_seconds`: an ingest stopped any way (Ctrl-C, a kill, a crash) and run again skips
the files already indexed and embeds only the chunks that have no vector yet. `rebuild` builds a
new index and swaps it in at the end; stopped part way, the live index is left as it was.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .. import tracing
from ..errors import AppError, IngestError
from .chunking import Chunker
from .loaders import LoadError, discover, load, read_capped, time_budget

if TYPE_CHECKING:
    from ..config import Settings
    from ..llm import Gateway
    from ..store import Chunk, Store
    from .loaders import Document

logger = logging.getLogger(__name__)
PROGRESS_CHUNKS = 32
"""Chunks embedded between two progress reports (and possible checkpoints)."""
PARTIAL = "partial"
"""The fingerprint of a file whose chunks are not all embedded yet: it is never up to date."""


@dataclass(frozen=True)
class Step:
    """Where an ingest is, for a progress display: files, bytes and the file at hand.

    Bytes measure the work: a file counts its size once it is done, and its embedded share of
    it while it is embedded, so `bytes_done / bytes` moves steadily and gives the time left.
    """

    files_done: int
    files: int
    bytes_done: int
    bytes: int
    source: str
    """The file at hand ("" once every file is done)."""
    chunks_done: int = 0
    """Chunks of the file at hand embedded so far."""
    chunks: int = 0
    """Chunks of the file at hand to embed (0 while it is read, or with nothing to embed)."""
    embedded: int = 0
    """Chunks embedded by this ingest so far, every file."""


Progress = Callable[[Step], None]
"""Called before each file, after each step of embedding, and once at the end."""


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
    """Indexes folders into a store; embeds through the gateway unless it is None (lexical).

    `Ingestor.from_settings` builds it the way every entry point should (the CLI, the evals).
    """

    store: Store
    chunker: Chunker
    gateway: Gateway | None
    max_bytes: int
    file_seconds: float
    checkpoint_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, gateway: Gateway | None) -> Ingestor:
        """Chunk sizes, the byte cap and the time budget from the settings (`RAG_*`); words
        only when `gateway` is None or RAG_LEXICAL_ONLY is set."""
        retrieval = settings.retrieval
        return cls(
            store,
            Chunker(retrieval.chunk_tokens, retrieval.chunk_overlap_tokens),
            None if retrieval.lexical_only else gateway,
            max_bytes=int(retrieval.max_document_mb * 1_000_000),
            file_seconds=retrieval.file_seconds,
        )

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
                    report = _Run(self, fresh, folder, progress).index()
            else:
                report = _Run(self, self.store, folder, progress).index()
            span.update(
                {
                    "rag.ingest.chunks_added": report.chunks_added,
                    "rag.ingest.dimensions": dimensions,
                }
            )
        return report

    def chunks(self, folder: Path) -> Iterator[Chunk]:
        """The folder's chunks as an ingest makes them, within the same byte cap and time
        budget, without indexing them (files that cannot be read are skipped)."""
        run = _Run(self, self.store, folder, None)
        for relative, path in run.found:
            try:
                read = run.read(f"{run.prefix}{relative}", path)
            except LoadError:
                continue
            if read is not None:
                yield from read[1]

    def _check_embeddings(self, *, check_size: bool) -> int:
        """Embed a probe before any file: a broken model fails now, with its name and the fix."""
        if self.gateway is None:
            return 0
        try:
            [probe] = self.gateway.embed(["probe"])
        except AppError as exc:
            pulls = getattr(self.gateway.module, "pull", None) is not None
            raise IngestError(
                f"the embedding model {self.gateway.embed_model} does not work: {exc}. Fix it "
                f"({'`models pull`, or ' if pulls else ''}llm.yaml), or index for keyword search "
                "only with RAG_LEXICAL_ONLY=true"
            ) from None
        have = self.store.dimensions()
        if check_size and have is not None and have != len(probe):
            raise IngestError(
                f"the embedding model {self.gateway.embed_model} gives {len(probe)} dimensions "
                f"but the index holds {have}: run `ingest --rebuild` to re-embed everything"
            )
        return len(probe)

    def fingerprint(self, file_sha256: str) -> str:
        """What decides whether a file is indexed again: its bytes, its chunks, its vectors."""
        model = self.gateway.embed_model if self.gateway is not None else "lexical"
        raw = f"{file_sha256}\0{self.chunker.fingerprint()}\0{model}"
        return hashlib.sha256(raw.encode()).hexdigest()


class _Run:
    """One ingest of one folder into one store, file by file."""

    def __init__(
        self, ingestor: Ingestor, store: Store, folder: Path, progress: Progress | None
    ) -> None:
        self.ingestor, self.store, self.progress = ingestor, store, progress
        self.prefix = source_prefix(folder)
        self.found = list(discover(folder))
        self.sizes = [_size(path, ingestor.max_bytes) for _, path in self.found]
        self.bytes = sum(self.sizes)
        self.report = Report(mode="lexical" if ingestor.gateway is None else "hybrid")
        self.done = 0
        self.bytes_done = 0

    def index(self) -> Report:
        report, indexed = self.report, self.store.fingerprints()
        seen: set[str] = set()
        for (relative, path), size in zip(self.found, self.sizes, strict=True):
            source = f"{self.prefix}{relative}"
            self.tell(source)
            report.files += 1
            try:
                self.index_file(source, path, indexed.get(source))
            except LoadError as exc:
                report.skipped[source] = str(exc)
            else:
                seen.add(source)
            self.done += 1
            self.bytes_done += size
        self.tell("")
        for source in indexed:
            if source.startswith(self.prefix) and source not in seen:
                self.store.delete_source(source)
                report.removed.append(source)
        report.chunks = self.store.count()
        return report

    def index_file(self, source: str, path: Path | LoadError, indexed: str | None) -> None:
        """Index one file unless its fingerprint is unchanged; LoadError says why it is not."""
        read = self.read(source, path, unless=indexed)
        if read is None:
            self.report.unchanged += 1
            return
        document, chunks = read
        self.store_file(source, self.ingestor.fingerprint(document.sha256), chunks)

    def read(
        self, source: str, path: Path | LoadError, unless: str | None = None
    ) -> tuple[Document, list[Chunk]] | None:
        """A file's text and chunks, within the byte cap and the time budget; None when its
        fingerprint is `unless` (it is indexed as it is). LoadError says why it is not read."""
        if isinstance(path, LoadError):
            raise path
        ingestor, doing, started = self.ingestor, "read", time.monotonic()
        try:
            data = read_capped(path, ingestor.max_bytes)
            if unless == ingestor.fingerprint(hashlib.sha256(data).hexdigest()):
                return None
            document = load(source, path, max_bytes=ingestor.max_bytes, seconds=ingestor.file_seconds)
            doing = "split into chunks"
            chunks = self.chunk(document, ingestor.file_seconds - (time.monotonic() - started))
        except (LoadError, AppError):
            raise
        except OSError as exc:
            raise LoadError(f"cannot read it: {exc.strerror or type(exc).__name__}") from None
        except Exception as exc:  # a parser's or the splitter's bug: this file only
            logger.debug("%s: skipped", source, exc_info=True)
            raise LoadError(f"could not be {doing}: {_raised_where(exc)}") from None
        return document, chunks

    def chunk(self, document: Document, seconds: float) -> list[Chunk]:
        """The document's chunks, within what is left of the file's time budget."""
        try:
            with time_budget(max(seconds, 0.001)):
                return self.ingestor.chunker.chunk(document)
        except LoadError:
            raise LoadError(
                f"took longer than {self.ingestor.file_seconds:g} s to read and split into "
                "chunks (RAG_FILE_SECONDS)"
            ) from None

    def store_file(self, source: str, fingerprint: str, chunks: list[Chunk]) -> None:
        """Write a file's chunks with vectors for those without one, committed every
        `checkpoint_seconds` while it is embedded (a stopped ingest keeps what was embedded)."""
        gateway = self.ingestor.gateway
        vectors: dict[str, list[float]] = {}
        if gateway is not None:
            have = self.store.vectors_of(source)
            todo = [chunk for chunk in chunks if chunk.id not in have]
            committed = time.monotonic()
            for start in range(0, len(todo), PROGRESS_CHUNKS):
                batch = todo[start : start + PROGRESS_CHUNKS]
                embedded = gateway.embed([chunk.indexed_text for chunk in batch])
                vectors.update(zip((chunk.id for chunk in batch), embedded, strict=True))
                self.report.chunks_embedded += len(batch)
                done = start + len(batch)
                self.tell(source, done, len(todo))
                checkpoint = time.monotonic() - committed >= self.ingestor.checkpoint_seconds
                if checkpoint and done < len(todo):
                    self.report.chunks_added += self.store.replace_source(
                        source, PARTIAL, chunks, vectors
                    )
                    vectors, committed = {}, time.monotonic()
        self.report.chunks_added += self.store.replace_source(source, fingerprint, chunks, vectors)
        self.report.indexed += 1

    def tell(self, source: str, chunks_done: int = 0, chunks: int = 0) -> None:
        if self.progress is None:
            return
        share = self.sizes[self.done] * chunks_done // chunks if chunks else 0
        self.progress(
            Step(
                files_done=self.done,
                files=len(self.found),
                bytes_done=self.bytes_done + share,
                bytes=self.bytes,
                source=source,
                chunks_done=chunks_done,
                chunks=chunks,
                embedded=self.report.chunks_embedded,
            )
        )


def _size(path: Path | LoadError, max_bytes: int) -> int:
    """A file's share of the work: its size, or nothing for a file that will be refused at once."""
    if isinstance(path, LoadError):
        return 0
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    return size if size <= max_bytes else 0


def _raised_where(exc: Exception) -> str:
    """`AssertionError in html.parser`: the exception's type and the innermost public module
    it came through (a parser's private helpers, `_markupbase`, name no one's parser)."""
    frames = []
    trace = exc.__traceback__
    while trace is not None:
        frames.append(str(trace.tb_frame.f_globals.get("__name__", "")))
        trace = trace.tb_next
    for module in reversed(frames):
        public = []
        for part in module.split("."):
            if part.startswith("_"):
                break
            public.append(part)
        if public:
            return f"{type(exc).__name__} in {'.'.join(public)}"
    return type(exc).__name__


def source_prefix(folder: Path) -> str:
    """How a folder's files are named in the index: relative to the working directory if
    inside it (`data/docs/guide.md`), else absolute."""
    resolved = folder.resolve()
    try:
        name = resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        name = resolved.as_posix()
    return "" if name == "." else f"{name}/"
