"""Answer a question from the indexed documents, with the sources it rests on.

The flow: retrieve, and if nothing relevant comes back say so without calling the model (a
model asked to answer from nothing invents); otherwise number the sources, generate, and map
the model's ``[n]`` citations back to chunks. Small base models rarely write citations, so when
an answer cites nothing valid, the source that contains most of the answer's words is marked as
an *inferred* citation; when none does, every source comes back flagged uncited.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from .gateway import Usage
from .prompts import SourceText, rag_prompt
from .retrieval import Retriever
from .settings import AppError
from .store.query import query_terms
from .telemetry import record_content
from .tracing import get_tracer, trace_id_hex

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .gateway import Gateway
    from .retrieval import ScoredChunk
    from .settings import Settings
    from .store import Store

NO_ANSWER = (
    "I could not find this in the indexed documents, so I will not guess. Try rephrasing the "
    "question, or ingest the documents that cover it."
)
EMPTY_ANSWER = "The model returned an empty answer; the sources below may still help."
_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# An inferred citation needs most of the answer's content words to appear in the source.
_MIN_INFERRED_OVERLAP = 0.5
_SNIPPET_CHARS = 280


class QuestionError(AppError):
    """The question cannot be asked as given (empty, too long)."""


class SourceRef(BaseModel):
    """A source shown with an answer; ``n`` is the number the model saw and cites."""

    n: int
    id: str = Field(description="Chunk id; GET /v1/sources/{id} shows the chunk.")
    path: str
    heading: str
    score: float = Field(description="Reciprocal-rank-fusion score, higher is better.")
    lexical_score: float | None = None
    vector_score: float | None = None
    cited: bool
    citation: Literal["model", "inferred"] | None = Field(
        default=None,
        description="'model': the answer cites it as [n]; 'inferred': the answer cites "
        "nothing valid but its words come from this source.",
    )
    start: int
    end: int
    snippet: str


class Answer(BaseModel):
    """An answer with its sources, what it cost and the trace that recorded it."""

    answer: str
    sources: list[SourceRef]
    model: str | None = Field(description="None when no model was called (nothing found).")
    usage: Usage
    latency_ms: float
    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$")


class Rag:
    """Question answering over a store through a gateway."""

    def __init__(
        self,
        retriever: Retriever,
        gateway: Gateway,
        *,
        count_tokens: Callable[[str], int] | None = None,
        context_tokens: int = 1500,
        max_answer_tokens: int = 200,
        max_question_chars: int = 2000,
    ) -> None:
        self.retriever = retriever
        self.gateway = gateway
        self.count_tokens = count_tokens or _estimate_tokens
        self.context_tokens = context_tokens
        self.max_answer_tokens = max_answer_tokens
        self.max_question_chars = max_question_chars

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: Store,
        gateway: Gateway,
        count_tokens: Callable[[str], int] | None = None,
    ) -> Rag:
        return cls(
            Retriever.from_settings(settings, store, gateway),
            gateway,
            count_tokens=count_tokens,
            context_tokens=settings.rag_context_tokens,
            max_answer_tokens=settings.rag_max_answer_tokens,
        )

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        """Retrieve, generate and cite; a question nothing matches gets a plain refusal."""
        question = question.strip()
        if not question:
            raise QuestionError("the question is empty")
        if len(question) > self.max_question_chars:
            raise QuestionError(
                f"the question is too long ({len(question)} characters, at most "
                f"{self.max_question_chars})"
            )
        started = time.perf_counter()
        with get_tracer().start_as_current_span("rag.ask") as span:
            trace_id = trace_id_hex(span)
            record_content(span, "rag.question", question)
            retrieval = self.retriever.retrieve(question, top_k)
            sources = self._fit_context(retrieval.hits)
            if not sources:
                span.set_attribute("rag.answered", value=False)
                return Answer(
                    answer=NO_ANSWER,
                    sources=[],
                    model=None,
                    usage=Usage(),
                    latency_ms=_ms_since(started),
                    trace_id=trace_id,
                )
            prompt = rag_prompt(
                question,
                [
                    SourceText(n, hit.chunk.source, hit.chunk.heading, hit.chunk.text)
                    for n, hit in enumerate(sources, 1)
                ],
                max_tokens=self.max_answer_tokens,
            )
            with get_tracer().start_as_current_span("rag.generate") as generate_span:
                record_content(generate_span, "gen_ai.prompt", prompt.completion)
                generation = self.gateway.generate(prompt)
                record_content(generate_span, "gen_ai.completion", generation.text)
                generate_span.set_attribute("gen_ai.response.model", generation.model)
                generate_span.set_attribute(
                    "gen_ai.usage.input_tokens", generation.usage.prompt_tokens
                )
                generate_span.set_attribute(
                    "gen_ai.usage.output_tokens", generation.usage.completion_tokens
                )
            text, cited = parse_citations(generation.text, len(sources))
            citation: Literal["model", "inferred"] = "model"
            if not cited:
                citation = "inferred"
                cited = infer_citations(
                    text, [hit.chunk.heading + "\n" + hit.chunk.text for hit in sources]
                )
            refs = [
                _source_ref(n, hit, cited=n in cited, citation=citation if n in cited else None)
                for n, hit in enumerate(sources, 1)
            ]
            span.set_attribute("rag.answered", value=True)
            span.set_attribute("rag.cited", sorted(cited))
            span.set_attribute("rag.citation", citation if cited else "none")
            return Answer(
                answer=text or EMPTY_ANSWER,
                sources=refs,
                model=generation.model,
                usage=generation.usage,
                latency_ms=_ms_since(started),
                trace_id=trace_id,
            )

    def _fit_context(self, hits: Sequence[ScoredChunk]) -> list[ScoredChunk]:
        """The best hits whose text fits the context budget (the first one always does)."""
        chosen: list[ScoredChunk] = []
        used = 0
        for hit in hits:
            cost = self.count_tokens(hit.chunk.heading + "\n" + hit.chunk.text) + 8
            if chosen and used + cost > self.context_tokens:
                continue
            chosen.append(hit)
            used += cost
        return chosen


def parse_citations(text: str, count: int) -> tuple[str, set[int]]:
    """The answer with invalid ``[n]`` markers removed, and the valid numbers it cites.

    ``[2]``, ``[1, 3]`` and ``[1][2]`` are understood; a number with no source behind it is
    dropped from the text rather than shown as a dangling reference.
    """
    cited: set[int] = set()

    def keep(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= count]
        cited.update(valid)
        return "".join(f"[{n}]" for n in valid)

    cleaned = _CITATION.sub(keep, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip(), cited


def infer_citations(answer: str, sources: Sequence[str]) -> set[int]:
    """The (1-based) source containing most of the answer's content words, if one does."""
    words = set(query_terms(answer))
    if not words:
        return set()
    best, best_overlap = 0, 0.0
    for n, text in enumerate(sources, 1):
        overlap = len(words & set(query_terms(text))) / len(words)
        if overlap > best_overlap:
            best, best_overlap = n, overlap
    return {best} if best and best_overlap >= _MIN_INFERRED_OVERLAP else set()


def _source_ref(
    n: int, hit: ScoredChunk, *, cited: bool, citation: Literal["model", "inferred"] | None
) -> SourceRef:
    chunk = hit.chunk
    snippet = " ".join(chunk.text.split())
    if len(snippet) > _SNIPPET_CHARS:
        snippet = snippet[: _SNIPPET_CHARS - 1].rstrip() + "…"
    return SourceRef(
        n=n,
        id=chunk.id,
        path=chunk.source,
        heading=chunk.heading,
        score=round(hit.score, 6),
        lexical_score=None if hit.lexical_score is None else round(hit.lexical_score, 6),
        vector_score=None if hit.vector_score is None else round(hit.vector_score, 6),
        cited=cited,
        citation=citation,
        start=chunk.start,
        end=chunk.end,
        snippet=snippet,
    )


def _estimate_tokens(text: str) -> int:
    """About four characters a token: used only when no tokenizer is given."""
    return max(1, len(text) // 4)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
