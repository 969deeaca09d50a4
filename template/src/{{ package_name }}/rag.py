"""Answer a question from the indexed documents: retrieve, generate, cite.

A follow-up is first rewritten, with the conversation before it, into a question that stands
alone (`conversation.py`). When nothing relevant is found, the app says so without calling the
model (a model asked to answer from nothing invents). Otherwise the sources are numbered, the
answer is generated (streamed, token by token, to whoever wants it), and its `[n]` citations are
mapped back to chunks. Small models often cite nothing: then the source holding most of the
answer's words is marked as an *inferred* citation.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from . import tracing
from .conversation import bounded, needs_rewrite, standalone
from .errors import QuestionError
from .ingest.chunking import estimate_tokens
from .prompts import Source, guard, messages
from .retrieval import Retriever
from .store.base import search_terms

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from .config import RetrievalSettings, Settings
    from .conversation import Turn
    from .llm import ChatModel, Gateway, Generation
    from .retrieval import Scored
    from .store import Store

NO_ANSWER = (
    "I could not find this in the indexed documents, so I will not guess. Try rephrasing the "
    "question, or ingest the documents that cover it."
)
_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_MIN_INFERRED_OVERLAP = 0.5
_SNIPPET_CHARS = 280


class SourceRef(BaseModel):
    """A source shown with an answer; `n` is the number the model saw and cites."""

    n: int
    id: str = Field(description="The chunk's id: GET /v1/sources/{id} shows it.")
    path: str
    heading: str
    score: float = Field(description="Reciprocal rank fusion score; higher is better.")
    cited: bool
    citation: Literal["model", "inferred"] | None = Field(
        default=None,
        description="model: the answer cites it as [n]; inferred: the answer cites nothing "
        "but its words come from this source.",
    )
    snippet: str


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class RetrievalInfo(BaseModel):
    """How the sources were found."""

    mode: Literal["hybrid", "lexical"]
    reason: str = Field(default="", description="Why vectors were not used, when they were not.")


REWRITTEN = Field(
    default=None,
    description="The follow-up rewritten to stand alone, as it was searched for and answered; "
    "None when the question was used as asked.",
)


class Retrieved(BaseModel):
    """What a streamed answer starts with: its trace id and the sources found for it."""

    trace_id: str
    sources: list[SourceRef]
    retrieval: RetrievalInfo
    rewritten_question: str | None = REWRITTEN


class Answer(BaseModel):
    """An answer with its sources, what it cost, and the trace that recorded it."""

    answer: str
    sources: list[SourceRef]
    model: str | None = Field(description="None when no model was called (nothing found).")
    usage: Usage
    latency_ms: float
    first_token_ms: float | None = None
    retrieval: RetrievalInfo
    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    rewritten_question: str | None = REWRITTEN


class Rag:
    """Question answering over a retriever and a gateway."""

    def __init__(
        self, retriever: Retriever, gateway: ChatModel, settings: RetrievalSettings
    ) -> None:
        self.retriever = retriever
        self.gateway = gateway
        self.settings = settings

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: Store,
        gateway: Gateway,
        *,
        chat: ChatModel | None = None,
        lexical: bool = False,
    ) -> Rag:
        """Answering the way every entry point should (the CLI, the API, the evals): vectors
        through `gateway` unless `lexical` or RAG_LEXICAL_ONLY is set, answers from `chat` or
        the gateway, the limits from the settings (`RAG_*`)."""
        embeddings = None if lexical or settings.retrieval.lexical_only else gateway
        retriever = Retriever(store, embeddings, settings.retrieval)
        return cls(retriever, chat or gateway, settings.retrieval)

    def ask(
        self, question: str, top_k: int | None = None, *, history: Sequence[Turn] = ()
    ) -> Answer:
        """The whole answer at once."""
        *_, answer = self.stream(question, top_k, history=history)
        assert isinstance(answer, Answer)  # noqa: S101 - stream always ends with one
        return answer

    def stream(
        self, question: str, top_k: int | None = None, *, history: Sequence[Turn] = ()
    ) -> Iterator[Retrieved | str | Answer]:
        """`Retrieved` (the sources), the answer's text as it is generated, then the `Answer`.
        `history` is the conversation before the question, oldest first."""
        question = self._checked(question)
        started = time.perf_counter()
        with tracing.span("ask", **{"rag.question": question}) as span:
            trace_id = tracing.trace_id()
            rewritten = self.standalone(question, history)
            question = rewritten or question
            span["rag.rewritten_question"] = rewritten or ""
            retrieval = self.retriever.retrieve(question, top_k)
            info = RetrievalInfo(mode=retrieval.mode, reason=retrieval.reason)
            hits = self._fit(retrieval.hits)
            span["rag.answered"] = bool(hits)
            yield Retrieved(
                trace_id=trace_id,
                sources=[_ref(n, h, set(), "none") for n, h in enumerate(hits, 1)],
                retrieval=info,
                rewritten_question=rewritten,
            )
            if not hits:
                yield Answer(
                    answer=NO_ANSWER, sources=[], model=None, usage=Usage(),
                    latency_ms=_ms(started), retrieval=info, trace_id=trace_id,
                    rewritten_question=rewritten,
                )  # fmt: skip
                return
            guarded = [guard(hit.chunk.text) for hit in hits]
            span["rag.injection_guard"] = sum(removed for _, removed in guarded)
            sources = [
                Source(n, _title(hit), text)
                for n, (hit, (text, _)) in enumerate(zip(hits, guarded, strict=True), 1)
            ]
            generation: Generation | None = None
            for item in self.gateway.stream(messages(question, sources)):
                if isinstance(item, str):
                    yield item
                else:
                    generation = item
            assert generation is not None  # noqa: S101 - the gateway always ends with one
            text, cited, how = cite(
                generation.text, [_title(h) + "\n" + h.chunk.text for h in hits]
            )
            span.update({"rag.cited": sorted(cited), "rag.citation": how})
            yield Answer(
                answer=text or "The model gave an empty answer; the sources may still help.",
                sources=[_ref(n, hit, cited, how) for n, hit in enumerate(hits, 1)],
                model=generation.model,
                usage=Usage(
                    prompt_tokens=generation.usage.prompt_tokens,
                    completion_tokens=generation.usage.completion_tokens,
                ),
                latency_ms=_ms(started),
                first_token_ms=generation.first_token_ms,
                retrieval=info,
                trace_id=trace_id,
                rewritten_question=rewritten,
            )

    def standalone(self, question: str, history: Sequence[Turn]) -> str | None:
        """The follow-up `question` rewritten to stand alone, given the conversation before it
        (bounded by RAG_HISTORY_*); None when it needs no rewrite or RAG_REWRITE is off."""
        history = bounded(history, self.settings)
        if not self.settings.rewrite or not needs_rewrite(question, history):
            return None
        return standalone(self.gateway, question, history)

    def _checked(self, question: str) -> str:
        question = question.encode("utf-8", "replace").decode("utf-8").strip()  # lone surrogates
        if not question:
            raise QuestionError("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(
                f"the question has {len(question)} characters, at most "
                f"{self.settings.max_question_chars} are accepted (RAG_MAX_QUESTION_CHARS)"
            )
        return question

    def _fit(self, hits: Sequence[Scored]) -> list[Scored]:
        """The best hits whose text fits the context budget (the first one always does)."""
        chosen: list[Scored] = []
        used = 0
        for hit in hits:
            cost = estimate_tokens(hit.chunk.indexed_text) + 16
            if chosen and used + cost > self.settings.context_tokens:
                continue
            chosen.append(hit)
            used += cost
        return chosen


def cite(text: str, sources: Sequence[str]) -> tuple[str, set[int], str]:
    """The answer with invalid `[n]` markers removed, the numbers it cites, and how:
    `model` (it wrote them), `inferred` (most of its words come from one source) or `none`."""
    cited: set[int] = set()

    def keep(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= len(sources)]
        cited.update(valid)
        return "".join(f"[{n}]" for n in valid)

    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", _CITATION.sub(keep, text)).strip()
    if cited:
        return text, cited, "model"
    words = set(search_terms(text))
    overlaps = [len(words & set(search_terms(s))) / len(words) if words else 0.0 for s in sources]
    best = max(range(len(sources)), key=overlaps.__getitem__, default=-1)
    if best >= 0 and overlaps[best] >= _MIN_INFERRED_OVERLAP:
        return text, {best + 1}, "inferred"
    return text, set(), "none"


def _title(hit: Scored) -> str:
    return f"{hit.chunk.source} > {hit.chunk.heading}" if hit.chunk.heading else hit.chunk.source


def _ref(n: int, hit: Scored, cited: set[int], how: str) -> SourceRef:
    snippet = " ".join(hit.chunk.text.split())
    if len(snippet) > _SNIPPET_CHARS:
        snippet = snippet[: _SNIPPET_CHARS - 1].rstrip() + "…"
    return SourceRef(
        n=n,
        id=hit.chunk.id,
        path=hit.chunk.source,
        heading=hit.chunk.heading,
        score=round(hit.score, 6),
        cited=n in cited,
        citation=("model" if how == "model" else "inferred") if n in cited else None,
        snippet=snippet,
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
