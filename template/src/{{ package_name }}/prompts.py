"""Prompts carry both a chat form and a completion form.

Instruction-tuned models get the chat messages; base models without a chat template get the
completion text (numbered sources, ``Question:``, ``Answer:``) and stop sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class Prompt:
    """One request to a model, in both forms; the gateway picks the form the model needs."""

    messages: tuple[dict[str, str], ...]
    completion: str
    stop: tuple[str, ...] = field(default=("\n\n",))
    max_tokens: int = 256
    temperature: float = 0.0


@dataclass(frozen=True)
class SourceText:
    """One retrieved passage as the model sees it, under the number it is cited by."""

    number: int
    path: str
    heading: str
    text: str

    @property
    def label(self) -> str:
        """Where the passage comes from, e.g. ``guide.md > Install > Linux``."""
        return f"{self.path} > {self.heading}" if self.heading else self.path


SYSTEM_PROMPT = (
    "You answer questions about the user's documents. Use only the numbered sources. "
    "After each statement, cite the source it comes from by its number in square brackets, "
    "like [1] or [2][3]. If the sources do not contain the answer, say that you could not "
    "find it in the documents. Be brief."
)

# Base models continue text: after the answer they tend to invent another source or question.
COMPLETION_STOP = ("\n\n", "\nQuestion:", "\nAnswer:", "\nSources:", "\n[")


def rag_prompt(
    question: str,
    sources: Sequence[SourceText],
    *,
    max_tokens: int = 256,
    temperature: float = 0.0,
) -> Prompt:
    """A grounded question, in chat form (instruct models) and completion form (base models).

    The completion form is the shape a small base model continues correctly: numbered
    sources one per line, then ``Question:`` and ``Answer:``; it stops at the first blank
    line or at anything that starts a new source or question.
    """
    question = " ".join(question.split())
    numbered = "\n\n".join(f"[{s.number}] {s.label}\n{s.text.strip()}" for s in sources)
    user = f"Sources:\n\n{numbered}\n\nQuestion: {question}"
    lines = [f"[{s.number}] ({s.label}) {_one_line(s.text)}" for s in sources]
    completion = "Sources:\n" + "\n".join(lines) + f"\nQuestion: {question}\nAnswer:"
    return Prompt(
        messages=(
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
        ),
        completion=completion,
        stop=COMPLETION_STOP,
        max_tokens=max_tokens,
        temperature=temperature,
    )


def _one_line(text: str) -> str:
    """Blank lines inside a source would look like the end of an answer to a base model."""
    return " ".join(text.split())
