"""The one chunk type, and what every index store offers."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager


class Chunk(BaseModel):
    """A piece of a document: what is indexed, retrieved, cited and shown."""

    id: str = Field(description="Derived from the content: stable while the text is unchanged.")
    source: str = Field(description="The file, relative to the documents folder.")
    index: int = Field(description="Position among the file's chunks.")
    start: int = Field(description="Character offset in the file's text.")
    end: int
    heading: str = Field(description='Heading path, e.g. "Guide > Install > Linux".')
    text: str

    @property
    def indexed_text(self) -> str:
        """What is embedded and searched: the heading path gives a short chunk its context."""
        return f"{self.heading}\n\n{self.text}" if self.heading else self.text


class Hit(BaseModel):
    """A search result; a higher score is a better match (comparable within one search only)."""

    chunk: Chunk
    score: float


class Store(Protocol):
    """An index of chunks with keyword and vector search.

    `replace_source` makes a file's chunks exactly the ones given (ids that stay keep their
    vectors unless new ones are given): re-ingest is incremental and idempotent. A rebuild
    writes a new index beside the live one and swaps it in at the end (`rebuilding`), so
    questions asked meanwhile are answered from the old one.
    """

    name: str

    def fingerprints(self) -> dict[str, str]:
        """Every indexed file and the fingerprint it was indexed with."""
        ...

    def vectors_of(self, source: str) -> set[str]:
        """Ids of a file's chunks that have a vector."""
        ...

    def replace_source(
        self,
        source: str,
        fingerprint: str,
        chunks: Sequence[Chunk],
        vectors: dict[str, list[float]],
    ) -> int:
        """Index a file's chunks; returns how many were new."""
        ...

    def delete_source(self, source: str) -> None: ...

    def keyword_search(self, query: str, k: int) -> list[Hit]:
        """Full-text search for any user text (syntax characters never raise)."""
        ...

    def vector_search(self, vector: Sequence[float], k: int) -> list[Hit]:
        """Nearest chunks by cosine similarity (the score)."""
        ...

    def dimensions(self) -> int | None:
        """The vector size of the index, None while it holds no vector."""
        ...

    def get(self, chunk_id: str) -> Chunk | None: ...

    def count(self) -> int: ...

    def rebuilding(self) -> AbstractContextManager[Store]:
        """A fresh, empty index that replaces this one when the block ends without error."""
        ...

    def close(self) -> None: ...


# fmt: off
_STOPWORDS = frozenset(
    (
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
        "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
        "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for",
        "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him",
        "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "most",
        "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our",
        "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the",
        "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too",
        "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which",
        "while", "who", "whom", "why", "will", "with", "would", "you", "your", "please", "tell",
        "know", "anything", "something",
    )
)
# fmt: on
_WORD = re.compile(r"\w+")
MAX_TERMS = 32


def search_terms(text: str) -> list[str]:
    """The distinct lower-cased words of `text` that carry meaning (stop words dropped).

    In an OR query, "the" or "what" would match nearly every chunk and make any question look
    answerable; syntax characters of a search engine never reach it.
    """
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        term = word.strip("_")
        if term and term not in _STOPWORDS:
            seen.setdefault(term, None)
        if len(seen) >= MAX_TERMS:
            break
    return list(seen)
