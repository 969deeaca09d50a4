"""Scorers, from the cheapest and strictest to the most forgiving.

exact match → expected facts (contains) and patterns (regex) → semantic similarity of the
answer to a reference (embeddings through the gateway) → LLM-as-judge (a rubric asking whether
the answer is faithful to the retrieved context, through the gateway's chat). A scorer that
cannot run returns None with the reason, and the report says so; it never counts as a pass.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..prompts import Prompt  # noqa: TID252

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..gateway import Gateway  # noqa: TID252

NOT_FOUND = re.compile(
    r"could not find|cannot find|can't find|not found in|will not guess|do(?: not|n't) know",
    re.IGNORECASE,
)
JUDGE_RUBRIC = (
    "You grade answers. An answer is FAITHFUL when every statement in it is supported by the "
    "context, and UNFAITHFUL when it states anything the context does not support. Reply with "
    "one word: FAITHFUL or UNFAITHFUL."
)
_VERDICT = re.compile(r"\b(UNFAITHFUL|FAITHFUL)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Score:
    """A scorer's result: a value in [0, 1], or None with the reason it could not score."""

    value: float | None
    note: str = ""


def normalise(text: str) -> str:
    """Lower case, single spaces, no surrounding punctuation: what exact match compares."""
    return " ".join(text.lower().split()).strip(" .!?\"'")


def exact(answer: str, reference: str | None) -> Score:
    """1 when the answer equals the reference (normalised); no reference, no score."""
    if reference is None:
        return Score(None)
    return Score(1.0 if normalise(answer) == normalise(reference) else 0.0)


def contains(answer: str, facts: Sequence[str]) -> Score:
    """The share of expected facts the answer contains (case-insensitive)."""
    if not facts:
        return Score(None)
    lowered = answer.lower()
    return Score(sum(fact.lower() in lowered for fact in facts) / len(facts))


def regex(answer: str, patterns: Sequence[str]) -> Score:
    """The share of expected patterns the answer matches."""
    if not patterns:
        return Score(None)
    return Score(sum(bool(re.search(p, answer)) for p in patterns) / len(patterns))


def says_not_found(answer: str) -> bool:
    """Whether an answer declines (the app's "not found" answer, or a model saying so)."""
    return bool(NOT_FOUND.search(answer))


def semantic(answer: str, reference: str | None, gateway: Gateway) -> Score:
    """Cosine similarity of answer and reference embeddings, clipped to [0, 1]."""
    if reference is None:
        return Score(None)
    if not gateway.embeddings_enabled:
        return Score(None, "skipped: no embedding model is configured")
    first, second = gateway.embed([answer, reference])
    dot = sum(a * b for a, b in zip(first, second, strict=True))
    norms = math.sqrt(sum(a * a for a in first)) * math.sqrt(sum(b * b for b in second))
    return Score(max(0.0, min(1.0, dot / norms)) if norms else 0.0)


def judge_prompt(question: str, answer: str, context: Sequence[str]) -> Prompt:
    """The rubric prompt, in chat and completion form like every prompt of the app."""
    numbered = "\n".join(f"- {' '.join(text.split())}" for text in context)
    body = f"Context:\n{numbered}\n\nQuestion: {question}\nAnswer: {answer}\n"
    return Prompt(
        messages=(
            {"role": "system", "content": JUDGE_RUBRIC},
            {"role": "user", "content": body + "Verdict (FAITHFUL or UNFAITHFUL):"},
        ),
        completion=f"{JUDGE_RUBRIC}\n\n{body}Verdict:",
        stop=("\n",),
        max_tokens=8,
    )


def judge(question: str, answer: str, context: Sequence[str], gateway: Gateway) -> Score:
    """LLM-as-judge: 1 for FAITHFUL, 0 for UNFAITHFUL, None when the model gives no verdict."""
    if not context:
        return Score(None, "no retrieved context to judge against")
    verdict = gateway.generate(judge_prompt(question, answer, context)).text
    found = _VERDICT.search(verdict)
    if found is None:
        return Score(None, f"no verdict in {verdict[:60]!r}")
    return Score(1.0 if found.group(1).upper() == "FAITHFUL" else 0.0)
