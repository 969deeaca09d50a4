"""Find the chunks that answer a question: keywords and vectors, fused by reciprocal rank.

Keywords (BM25) find exact names, numbers and error codes that embeddings blur; vectors find
paraphrases that share no word with the question. Reciprocal rank fusion merges the two lists
without calibrating their scores. A keyword hit counts as evidence (it shares a meaningful word
with the question); a vector-only hit counts when its cosine similarity reaches the embedding
model's `min_similarity` (llm.yaml). When vectors cannot be used, retrieval says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from . import tracing
from .errors import AppError

if TYPE_CHECKING:
    from .config import RetrievalSettings
    from .llm import Gateway
    from .store import Chunk, Hit, Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """A retrieved chunk: its fused score and the evidence behind it."""

    chunk: Chunk
    score: float
    keyword_score: float | None = None
    vector_score: float | None = None


@dataclass(frozen=True)
class Retrieval:
    """The chunks found, and how: `hybrid`, or `lexical` with the reason."""

    hits: list[Scored]
    mode: Literal["hybrid", "lexical"]
    reason: str = ""


class Retriever:
    """Hybrid retrieval over a store, with the gateway's embeddings unless it is None."""

    def __init__(self, store: Store, gateway: Gateway | None, settings: RetrievalSettings) -> None:
        self.store = store
        self.gateway = gateway
        self.settings = settings

    def retrieve(self, question: str, top_k: int | None = None) -> Retrieval:
        k = top_k or self.settings.top_k
        pool = max(self.settings.candidates, k)
        with tracing.span("retrieve", **{"rag.retrieval.top_k": k}) as span:
            keyword = self.store.keyword_search(question, pool)
            vector, reason = self._vector_hits(question, pool)
            hits = self.fuse(keyword, vector)[:k]
            mode: Literal["hybrid", "lexical"] = "lexical" if reason else "hybrid"
            span.update(
                {
                    "rag.retrieval.mode": mode,
                    "rag.retrieval.keyword_hits": len(keyword),
                    "rag.retrieval.vector_hits": len(vector),
                    "rag.retrieval.chunk_ids": [hit.chunk.id for hit in hits],
                    **({"rag.retrieval.fallback": reason} if reason else {}),
                }
            )
        return Retrieval(hits=hits, mode=mode, reason=reason)

    def _vector_hits(self, question: str, pool: int) -> tuple[list[Hit], str]:
        """Vector hits above the similarity floor, or none and the reason."""
        if self.gateway is None or self.gateway.embedding is None:
            return [], "keyword search only (RAG_LEXICAL_ONLY=true)"
        if self.store.dimensions() is None:
            return [], "the index has no vectors: run `ingest`"
        try:
            [query] = self.gateway.embed([question], query=True)
            hits = self.store.vector_search(query, pool)
        except AppError as exc:
            logger.warning("vector search failed, keywords only: %s", exc)
            return [], f"vector search failed: {exc}"
        floor = self.gateway.embedding.min_similarity
        return [hit for hit in hits if hit.score >= floor], ""

    def fuse(self, keyword: list[Hit], vector: list[Hit]) -> list[Scored]:
        """Reciprocal rank fusion: each list adds 1 / (rrf_k + rank) to a chunk's score."""
        scores: dict[str, float] = {}
        for ranking in (keyword, vector):
            for rank, hit in enumerate(ranking, start=1):
                scores[hit.chunk.id] = scores.get(hit.chunk.id, 0.0) + 1 / (
                    self.settings.rrf_k + rank
                )
        chunks = {hit.chunk.id: hit.chunk for hit in (*keyword, *vector)}
        by_keyword = {hit.chunk.id: hit.score for hit in keyword}
        by_vector = {hit.chunk.id: hit.score for hit in vector}
        fused = [
            Scored(chunks[cid], score, by_keyword.get(cid), by_vector.get(cid))
            for cid, score in scores.items()
        ]
        return sorted(fused, key=lambda s: (-s.score, s.chunk.source, s.chunk.index))
