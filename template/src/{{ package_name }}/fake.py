"""A deterministic gateway with no model, for unit tests and a fast evaluation gate.

`FakeGateway.generate` answers from the prompt's own sources the way a well-behaved model
would: the first sentence of source [1], cited as `[1]`; with no sources it says it could not
find the answer. `embed` gives hashed bag-of-words vectors: texts sharing words are close, so
vector and hybrid retrieval can be tested for real, and the same text always gets the same
vector on every machine.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from typing import TYPE_CHECKING

from .gateway import Generation, Usage
from .telemetry import model_call
from .tokens import HeuristicTokenCounter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .prompts import Prompt

NOT_FOUND = "I could not find the answer in the documents."
# `[1] (label) text` (completion form) or `[1] label` then the text (chat form).
_COMPLETION_SOURCE = re.compile(r"^\[(\d+)\] (?:\([^)\n]*\) )?(.+)$", re.MULTILINE)
_CHAT_SOURCE = re.compile(
    r"^\[(\d+)\] [^\n]*\n(.+?)(?=\n\n\[\d+\] |\n\nQuestion:|\Z)", re.DOTALL | re.MULTILINE
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_WORD = re.compile(r"[^\W_]+")


def first_sentence(text: str) -> str:
    """The text up to its first sentence end (or all of it)."""
    text = " ".join(text.split())
    return _SENTENCE_END.split(text, maxsplit=1)[0]


def sources_in(prompt: Prompt) -> dict[int, str]:
    """The numbered sources a prompt carries, from its completion form or else its messages."""
    found = {int(num): text for num, text in _COMPLETION_SOURCE.findall(prompt.completion)}
    if found:
        return found
    for message in prompt.messages:
        content = message.get("content", "")
        found |= {int(num): text for num, text in _CHAT_SOURCE.findall(content)}
    return found


def hashed_embedding(text: str, dimensions: int) -> list[float]:
    """Feature-hashed, sublinear word counts, signed and L2-normalised."""
    vector = [0.0] * dimensions
    for word, count in Counter(w.lower() for w in _WORD.findall(text)).items():
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "big")
        sign = 1.0 if value & 1 else -1.0
        vector[(value >> 1) % dimensions] += sign * (1.0 + math.log(count))
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


class FakeGateway:
    """A `Gateway` that needs no model; records every prompt it is given."""

    def __init__(
        self,
        *,
        embeddings: bool = True,
        dimensions: int = 256,
        model: str = "fake",
        fail_with: Exception | None = None,
    ) -> None:
        self._embeddings = embeddings
        self.dimensions = dimensions
        self.model = model
        self.fail_with = fail_with
        self.prompts: list[Prompt] = []
        self.embedded: list[str] = []
        self._count = HeuristicTokenCounter()

    @property
    def embeddings_enabled(self) -> bool:
        """As constructed: tests of lexical-only retrieval pass `embeddings=False`."""
        return self._embeddings

    @property
    def chat_model_name(self) -> str:
        """The name given at construction."""
        return self.model

    def generate(self, prompt: Prompt) -> Generation:
        """The first sentence of source [1] (or the lowest-numbered source), cited."""
        self.prompts.append(prompt)
        with model_call(
            "text_completion",
            self.model,
            "fake",
            max_tokens=prompt.max_tokens,
            temperature=prompt.temperature,
        ) as call:
            if self.fail_with is not None:
                raise self.fail_with
            generation = self._answer(prompt)
            call.finish(
                response_model=generation.model,
                input_tokens=generation.usage.prompt_tokens,
                output_tokens=generation.usage.completion_tokens,
            )
        return generation

    def _answer(self, prompt: Prompt) -> Generation:
        sources = sources_in(prompt)
        if sources:
            number = 1 if 1 in sources else min(sources)
            text = f"{first_sentence(sources[number])} [{number}]"
        else:
            text = NOT_FOUND
        prompt_tokens = self._count(prompt.completion)
        completion_tokens = min(self._count(text), prompt.max_tokens)
        return Generation(
            text=text,
            model=self.model,
            usage=Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            ),
            latency_ms=0.0,
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Hashed bag-of-words vectors of `dimensions` floats."""
        if not self._embeddings:
            raise RuntimeError("FakeGateway was built with embeddings=False")
        if self.fail_with is not None:
            raise self.fail_with
        self.embedded.extend(texts)
        return [hashed_embedding(text, self.dimensions) for text in texts]
