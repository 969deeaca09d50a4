"""Follow-up questions: the conversation before a question, kept within bounds, and the question
rewritten to stand alone before it is searched for.

"Who grants access to it?" finds nothing by itself: the chat model rewrites it, with the turns
before it, into "Who grants access to the staging server?". Small models often answer instead
of rewriting, or repeat the question: such a rewrite is not used, and the previous questions are
searched for together with the follow-up instead. A question that already stands alone (no
history, or no word that points back) is not rewritten, and costs nothing more.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, field_validator

from . import tracing
from .ingest.chunking import estimate_tokens
from .prompts import rewrite_messages
from .store.base import search_terms

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .config import RetrievalSettings
    from .llm import ChatModel

MAX_TURN_CHARS = 8000
MAX_TURNS = 50  # in one request; RAG_HISTORY_TURNS decides how many are used
_REWRITE_TOKENS = 40
# Words that point back to something said before, and openings that continue it.
_POINTS_BACK = re.compile(
    r"\b(?:it|its|they|them|their|theirs|this|that|these|those|there|he|him|his|she|her|hers|"
    r"one|ones|same|former|latter|else|also|too|other|another|more|then)\b",
    re.IGNORECASE,
)
_CONTINUES = re.compile(
    r"^\s*(?:and|or|but|so|also|then|what about|how about|why not)\b", re.IGNORECASE
)
_MIN_TERMS = 3
_MIN_STEM = 3
_ASKED_BEFORE = 2
_ASKED_CHARS = 300
_LABEL = re.compile(r"^(?:standalone|rewritten|follow-up)?\s*question\s*:\s*", re.IGNORECASE)


class Turn(BaseModel):
    """One message of a conversation: what the person asked, or what the app answered."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN_CHARS)

    @field_validator("content")
    @classmethod
    def _clean(cls, value: str) -> str:
        return value.encode("utf-8", "replace").decode("utf-8").strip()  # lone surrogates


def bounded(history: Sequence[Turn], settings: RetrievalSettings) -> list[Turn]:
    """The most recent turns within RAG_HISTORY_TURNS and RAG_HISTORY_TOKENS, oldest first."""
    kept: list[Turn] = []
    used = 0
    for turn in reversed(history):
        cost = estimate_tokens(turn.content)
        if len(kept) >= settings.history_turns or used + cost > settings.history_tokens:
            break
        if turn.content:
            kept.append(turn)
            used += cost
    return kept[::-1]


def needs_rewrite(question: str, history: Sequence[Turn]) -> bool:
    """Whether `question` may lean on the turns before it: a word pointing back, an opening
    that continues, or too few words of its own to be searched for alone."""
    if not any(turn.role == "user" for turn in history):
        return False
    return bool(
        _POINTS_BACK.search(question)
        or _CONTINUES.match(question)
        or len(search_terms(question)) < _MIN_TERMS
    )


def standalone(model: ChatModel, question: str, history: Sequence[Turn]) -> str:
    """`question` rewritten to be understood without `history`: by the chat model when its
    rewrite is usable, else the previous questions (two at most: the one before may have been
    a follow-up too) followed by this one."""
    with tracing.span("rewrite", **{"rag.question": question}) as span:
        text = ""
        for item in model.stream(
            rewrite_messages(question, [(t.role, t.content) for t in history]),
            max_tokens=_REWRITE_TOKENS,
        ):
            if isinstance(item, str):
                text += item
        rewrite = _usable(text, question, history)
        by = "model"
        if rewrite is None:
            asked = [_sentence(t.content) for t in history if t.role == "user"]
            rewrite = " ".join([*asked[-_ASKED_BEFORE:], question])
            by = "previous questions"
        span.update({"rag.rewrite": rewrite, "rag.rewrite.by": by})
        return rewrite


def _usable(text: str, question: str, history: Sequence[Turn]) -> str | None:
    """The model's rewrite when it looks like one: a single line asking about this question's
    subject, in the conversation's words (a word from nowhere is made up), not an answer, not
    the question repeated."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    line = _LABEL.sub("", line.strip("\"'` ")).strip()
    if not line or len(line) > 4 * len(question) + 200:
        return None
    if question.rstrip().endswith("?") and not line.endswith("?"):
        return None  # an answer, not a question
    if " ".join(line.lower().split()) == " ".join(question.lower().split()):
        return None
    own = set(search_terms(question))
    terms = set(search_terms(line))
    if own and not own & terms:
        return None  # it lost what was asked
    said = {_stem(term) for turn in history for term in search_terms(turn.content)}
    if any(_stem(term) not in said | {_stem(t) for t in own} for term in terms):
        return None  # it made something up
    return line


def _sentence(text: str) -> str:
    """The start of `text` on one line, ending as a sentence does."""
    text = " ".join(text.split())[:_ASKED_CHARS]
    return text if text.endswith((".", "?", "!")) else f"{text}."


def _stem(term: str) -> str:
    """A word without its ending, at most five letters: "ports" is "port", "reimbursed" and
    "reimburses" are one word here."""
    for ending in ("ing", "ed", "es", "s"):
        if term.endswith(ending) and len(term) - len(ending) >= _MIN_STEM:
            return term[: -len(ending)][:5]
    return term[:5]
