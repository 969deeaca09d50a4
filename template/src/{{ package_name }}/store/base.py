"""What every index store offers, whatever database is behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..settings import AppError  # noqa: TID252 - see store/__init__.py

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..chunking import Chunk  # noqa: TID252


class StoreError(AppError):
    """The store cannot be opened or used; the message says what to do about it."""


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the store gives it back."""

    id: str
    source: str
    index: int
    start: int
    end: int
    heading: str
    text: str
    hash: str
    tokens: int


@dataclass(frozen=True)
class Hit:
    """A search result. ``score`` is higher for better matches.

    Lexical scores are the backend's full-text rank (BM25 for SQLite, ``ts_rank_cd`` for
    Postgres), so they compare within one backend only; vector scores are cosine similarities.
    """

    chunk: StoredChunk
    score: float


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert changed, for the ingest report."""

    added: int = 0
    unchanged: int = 0
    removed: int = 0
    embedded: int = 0


class Store(Protocol):
    """An index of chunks with lexical and vector search.

    ``upsert`` makes a source's chunks exactly the ones given, keyed by chunk id: new ids are
    inserted, ids that are gone are deleted, and ids that stay keep their stored vectors unless
    new ones are given. Together with content-derived ids this makes re-ingest incremental and
    idempotent.
    """

    @property
    def backend(self) -> str: ...

    def sources(self) -> dict[str, str]:
        """Every indexed source and the hash it was indexed with."""
        ...

    def chunk_state(self, source: str) -> dict[str, bool]:
        """The chunk ids of a source, each with whether it has a vector."""
        ...

    def upsert(
        self,
        source: str,
        source_hash: str,
        chunks: Sequence[Chunk],
        vectors: Mapping[str, Sequence[float]] | None = None,
    ) -> UpsertResult: ...

    def delete_source(self, source: str) -> int:
        """Remove a source and its chunks; returns the number of chunks removed."""
        ...

    def lexical_search(self, query: str, k: int) -> list[Hit]:
        """Full-text search for any user text: syntax characters never raise."""
        ...

    def vector_search(self, vector: Sequence[float], k: int) -> list[Hit]: ...

    def has_vectors(self) -> bool: ...

    def get_chunk(self, chunk_id: str) -> StoredChunk | None: ...

    def count(self) -> int: ...

    def clear(self) -> None:
        """Drop everything (used by ``ingest --rebuild``, e.g. after changing embedding model)."""
        ...

    def close(self) -> None: ...
