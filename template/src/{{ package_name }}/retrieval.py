"""Find the chunks that answer a question: BM25 and vectors, fused by reciprocal rank.

Lexical search finds exact names, numbers and error codes that embeddings blur; vectors find
paraphrases that share no word with the question. Reciprocal rank fusion combines the two
rankings without calibrating their scores against each other. Without an embedding model (or
when embedding the question fails) retrieval is lexical only, and says so.

Relevance is judged per list, on scores that mean something: a chunk counts as evidence when it
shares a (non stop) word with the question with at least ``min_lexical_score``, or when its
cosine similarity reaches ``min_similarity``. Weak embedding models give every pair a high
similarity, so the similarity threshold must be tuned per embedding model (with the evals).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .tracing import get_tracer

if TYPE_CHECKING:
    from .gateway import Gateway
    from .settings import Settings
    from .store import Hit, Store, StoredChunk

logger = logging.getLogger(__name__)

RetrievalMode = Literal["hybrid", "lexical"]


@dataclass(frozen=True)
class ScoredChunk:
    """A retrieved chunk with its fused score and the evidence behind it."""

    chunk: StoredChunk
    score: float
    """Reciprocal-rank-fusion score: higher is better; comparable across modes."""
    lexical_score: float | None = None
    vector_score: float | None = None


@dataclass(frozen=True)
class Retrieval:
    """The result of one retrieval, with how it was done."""

    hits: list[ScoredChunk]
    mode: RetrievalMode
    note: str = ""
    """Why retrieval fell back to lexical search, when it did."""


class Retriever:
    """Hybrid retrieval over a store, with the gateway's embeddings when it has them."""

    def __init__(
        self,
        store: Store,
        gateway: Gateway | None = None,
        *,
        top_k: int = 4,
        candidates: int = 20,
        rrf_k: int = 60,
        min_lexical_score: float = 0.0,
        min_similarity: float = 0.85,
        vector_weight: float = 1.0,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.top_k = top_k
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.min_lexical_score = min_lexical_score
        self.min_similarity = min_similarity
        self.vector_weight = vector_weight

    @classmethod
    def from_settings(
        cls, settings: Settings, store: Store, gateway: Gateway | None = None
    ) -> Retriever:
        return cls(
            store,
            gateway,
            top_k=settings.retrieval_top_k,
            candidates=settings.retrieval_candidates,
            rrf_k=settings.retrieval_rrf_k,
            min_lexical_score=settings.retrieval_min_lexical_score,
            min_similarity=settings.retrieval_min_similarity,
            vector_weight=settings.retrieval_vector_weight,
        )

    @property
    def hybrid_possible(self) -> bool:
        """Vectors can be used: the gateway embeds and the index holds vectors."""
        return (
            self.gateway is not None
            and self.gateway.embeddings_enabled
            and self.store.has_vectors()
        )

    def retrieve(self, query: str, top_k: int | None = None) -> Retrieval:
        """The best ``top_k`` relevant chunks for ``query`` (an empty list when none is)."""
        k = top_k or self.top_k
        pool = max(self.candidates, k)
        with get_tracer().start_as_current_span("rag.retrieve") as span:
            lexical = self.store.lexical_search(query, pool)
            vector: list[Hit] = []
            mode: RetrievalMode = "lexical"
            note = ""
            if self.hybrid_possible and self.gateway is not None:
                try:
                    [embedding] = self.gateway.embed([query])
                    vector = self.store.vector_search(embedding, pool)
                    mode = "hybrid"
                except Exception as exc:  # noqa: BLE001 - keyword search still answers
                    note = f"vector search unavailable ({type(exc).__name__}: {exc})"
                    logger.warning("retrieval falls back to lexical search: %s", note)
            hits = self.fuse(lexical, vector)[:k]
            span.set_attribute("rag.retrieval.mode", mode)
            span.set_attribute("rag.retrieval.lexical_candidates", len(lexical))
            span.set_attribute("rag.retrieval.vector_candidates", len(vector))
            span.set_attribute("rag.retrieval.hits", len(hits))
            span.set_attribute("rag.retrieval.chunk_ids", [hit.chunk.id for hit in hits])
            if note:
                span.set_attribute("rag.retrieval.note", note)
        return Retrieval(hits=hits, mode=mode, note=note)

    def fuse(self, lexical: list[Hit], vector: list[Hit]) -> list[ScoredChunk]:
        """Reciprocal rank fusion of the relevant hits of both lists, best first.

        A chunk's score is the sum over lists of ``weight / (rrf_k + rank)`` (the lexical
        weight is 1, the vector weight ``vector_weight``); irrelevant lexical hits are dropped
        before ranking, and vector-only hits below ``min_similarity`` after it.
        """
        relevant_lexical = [hit for hit in lexical if hit.score >= self.min_lexical_score]
        lexical_scores = {hit.chunk.id: hit.score for hit in relevant_lexical}
        vector_scores = {hit.chunk.id: hit.score for hit in vector}
        chunks = {hit.chunk.id: hit.chunk for hit in (*relevant_lexical, *vector)}
        fused: dict[str, float] = {}
        for ranking, weight in ((relevant_lexical, 1.0), (vector, self.vector_weight)):
            for rank, hit in enumerate(ranking, start=1):
                contribution = weight / (self.rrf_k + rank)
                fused[hit.chunk.id] = fused.get(hit.chunk.id, 0.0) + contribution
        results = [
            ScoredChunk(
                chunk=chunks[cid],
                score=score,
                lexical_score=lexical_scores.get(cid),
                vector_score=vector_scores.get(cid),
            )
            for cid, score in fused.items()
            if cid in lexical_scores or vector_scores[cid] >= self.min_similarity
        ]
        results.sort(key=lambda hit: (-hit.score, hit.chunk.source, hit.chunk.index))
        return results
