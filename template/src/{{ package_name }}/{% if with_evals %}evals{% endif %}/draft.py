"""Draft eval cases from the documents: the chat model reads a passage and writes a question it
answers, with the answer copied from the passage. Passages are sampled with a seed (the same
documents and seed give the same passages), one document after another so every document gets
its turn. A draft is kept only when it parses and its answer is words of the passage; the rest
are dropped and counted. Drafts are for a person to review, never a gate by themselves.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from ..llm import Generation, Usage
from ..store.base import search_terms
from .cases import Suite

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
    from pathlib import Path

    from ..llm import ChatModel
    from ..store import Chunk

DRAFT_SYSTEM = (
    "You write quiz questions about a passage. Reply with exactly two lines:\n"
    "QUESTION: a question that the passage answers\n"
    "ANSWER: the answer, a few words copied from the passage"
)
# "QUESTION: ...", also as a weak model writes it: "**Question:** ...", "1. question: ..."
_QUESTION = re.compile(r"^[\W\d]*question[^\w:]*:[*_\s]*(.+)$", re.IGNORECASE | re.MULTILINE)
_ANSWER = re.compile(r"^[\W\d]*answer[^\w:]*:[*_\s]*(.+)$", re.IGNORECASE | re.MULTILINE)
# One worked example: small models follow a shown format far better than a described one.
EXAMPLE = (
    "The visitor badge is red. Visitors sign in at the reception on the ground floor.",
    "QUESTION: What colour is the visitor badge?\nANSWER: red",
)
MAX_TOKENS = 64
"""Enough for a question and a short answer; a model that rambles on is cut off."""
MAX_ANSWER_WORDS = 8
MIN_PASSAGE_WORDS = 8


@dataclass
class Drafts:
    """What a draft run kept, and why the others were dropped."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    tried: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


def sample(chunks: Sequence[Chunk], limit: int, seed: int) -> list[Chunk]:
    """Up to `limit` passages worth a question: shuffled within each document by `seed`, then
    taken one document after another."""
    rng = random.Random(seed)  # noqa: S311 - sampling, not security
    by_source: dict[str, list[Chunk]] = {}
    for chunk in sorted(chunks, key=lambda c: (c.source, c.index)):
        if len(search_terms(chunk.text)) >= MIN_PASSAGE_WORDS:
            by_source.setdefault(chunk.source, []).append(chunk)
    for passages in by_source.values():
        rng.shuffle(passages)
    queues = [by_source[source] for source in sorted(by_source)]
    picked: list[Chunk] = []
    while len(picked) < limit and any(queues):
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return picked


def draft(
    model: ChatModel,
    passages: Sequence[Chunk],
    count: int,
    taken: Collection[str] = (),
    progress: Callable[[int, int, str], None] | None = None,
) -> Drafts:
    """Ask for a question about each passage until `count` drafts are kept; a passage whose
    case id is `taken` (drafted before) is passed over."""
    drafts = Drafts()
    seen: set[str] = set()
    for chunk in passages:
        if len(drafts.cases) >= count:
            break
        stem = re.sub(r"[^\w.-]+", "-", chunk.source).strip("-")
        case_id = f"draft-{stem}-{chunk.index}"
        if case_id in taken:
            continue
        if progress:
            progress(len(drafts.cases), count, chunk.source)
        drafts.tried += 1
        reply = _reply(model, chunk.text)
        case, problem = parse(reply, chunk.text)
        if case is None or case["question"].lower() in seen:
            drafts.dropped[problem or "the same question twice"] += 1
            continue
        seen.add(case["question"].lower())
        drafts.cases.append(
            {
                "id": case_id,
                **case,
                "expected_sources": [chunk.source],
                "label": "answerable",
                "passage": chunk.text.strip(),
            }
        )
    if progress:
        progress(len(drafts.cases), count, "")
    return drafts


def _reply(model: ChatModel, passage: str) -> str:
    messages = [
        {"role": "system", "content": DRAFT_SYSTEM},
        {"role": "user", "content": f"Passage:\n{EXAMPLE[0]}"},
        {"role": "assistant", "content": EXAMPLE[1]},
        {"role": "user", "content": f"Passage:\n{passage}"},
    ]
    text = ""
    for item in model.stream(messages):
        if isinstance(item, Generation):
            return item.text
        text += item
    return text


def parse(reply: str, passage: str) -> tuple[dict[str, Any] | None, str | None]:
    """A case from the model's reply, or None and why it was dropped."""
    question, answer = _QUESTION.search(reply), _ANSWER.search(reply)
    if question is None or answer is None:
        return None, "no QUESTION: and ANSWER: lines"
    asked = " ".join(question[1].split()).strip("\"' ")
    said = " ".join(answer[1].split()).strip("\"'` .")
    if not asked.endswith("?") or len(asked) < 10:  # noqa: PLR2004 - a short question
        return None, "the question is not a question"
    if not said or len(said.split()) > MAX_ANSWER_WORDS:
        return None, f"the answer is empty or longer than {MAX_ANSWER_WORDS} words"
    if said.lower() not in " ".join(passage.split()).lower():
        return None, "the answer is not words of the passage"
    if said.lower() in asked.lower():
        return None, "the question gives the answer away"
    return {"question": asked, "expected_facts": [said]}, None


def header(docs: Path, model: str, seed: int) -> str:
    """What a drafts file says about itself, and what to do with it."""
    return (
        f"# Drafted from {docs} by {model} (seed {seed}).\n"
        "# Review every case: fix or delete weak questions and facts (`passage` is what a\n"
        "# question was drafted from), then move this file to evals/cases.yaml and record the\n"
        "# baseline with `make eval-baseline`.\n"
    )


def dump(suite: Suite | None, cases: Sequence[Mapping[str, Any]]) -> str:
    """A whole cases file: the suite's settings (or the defaults) and `cases`, as YAML with
    passages as readable blocks."""
    base = suite or Suite.model_construct(cases=[])
    data = {
        "version": base.version,
        "top_k": base.top_k,
        "thresholds": base.thresholds.model_dump(),
        "cases": list(cases),
    }
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


class ClozeModel:
    """A deterministic stand-in for the chat model (`eval draft --fake`): it takes the first
    sentence of the passage that holds a figure or a name, and asks for that word back. It
    tests the drafting path in seconds without a model; its questions are fill-in-the-blanks."""

    chat_model = "fake-cloze"

    def stream(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        max_tokens: int | None = None,  # noqa: ARG002 - its replies are one question
    ) -> Iterator[str | Generation]:
        passage = messages[-1]["content"].split("Passage:\n", 1)[-1]
        text = "no question"
        for line in passage.splitlines():
            for sentence in re.split(r"(?<=[.!?])\s+", line.strip(" #>*-|")):
                words = [w.strip(",;:()\"'`*") for w in sentence.rstrip(".!?").split()]
                fact = next((w for w in words if re.fullmatch(r"[\w:.-]*\d[\w:.-]*", w)), None)
                fact = fact or next((w for w in words[1:] if re.fullmatch(r"[A-Z]\w+", w)), None)
                if fact and len(words) >= 5:  # noqa: PLR2004 - a sentence, not a heading
                    blank = " ".join("___" if w == fact else w for w in words)
                    text = f"QUESTION: Which word fills the blank: {blank}?\nANSWER: {fact}"
                    break
            if text != "no question":
                break
        yield text
        yield Generation(text=text, model=self.chat_model, usage=Usage(len(passage) // 4, 20))
