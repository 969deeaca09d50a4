"""Split a document into chunks that fit a token budget and stand on their own.

Markdown (and what the loaders turn into Markdown: HTML, PDF) is split at its headings first,
so a chunk never spans two sections and carries its heading path ("Guide > Install > Linux");
a long section is split further on its own structure (blocks, list items, sentences) by
`semantic-text-splitter`, with some overlap. Plain text is split the same way, without headings.
Sizes are in tokens, estimated at four characters each (what embedding models average on
English; the budget keeps a margin for other text).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from semantic_text_splitter import MarkdownSplitter, TextSplitter

from ..store import Chunk

if TYPE_CHECKING:
    from .loaders import Document

CHARS_PER_TOKEN = 4
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)


def estimate_tokens(text: str) -> int:
    """Tokens in `text`, roughly: used for chunk sizes and the prompt's context budget."""
    return len(text) // CHARS_PER_TOKEN + 1


@dataclass(frozen=True)
class Chunker:
    """Chunks of at most `max_tokens`, with `overlap_tokens` shared between neighbours."""

    max_tokens: int = 256
    overlap_tokens: int = 32

    def fingerprint(self) -> str:
        """Changes whenever the same file would give other chunks."""
        return f"chunks:{self.max_tokens}:{self.overlap_tokens}:v1"

    def chunk(self, document: Document) -> list[Chunk]:
        capacity = self.max_tokens * CHARS_PER_TOKEN
        overlap = min(self.overlap_tokens, self.max_tokens // 2) * CHARS_PER_TOKEN
        splitter: MarkdownSplitter | TextSplitter = (
            TextSplitter(capacity, overlap=overlap)
            if document.format == "text"
            else MarkdownSplitter(capacity, overlap=overlap)
        )
        sections = (
            [("", 0, len(document.text))]
            if document.format == "text"
            else sections_of(document.text)
        )
        chunks: list[Chunk] = []
        seen: dict[str, int] = {}
        for heading, start, end in sections:
            for offset, piece in splitter.chunk_indices(document.text[start:end]):
                if not piece.strip():
                    continue
                digest = hashlib.sha256(
                    f"{document.source}\0{heading}\0{piece}".encode()
                ).hexdigest()
                seen[digest] = seen.get(digest, -1) + 1  # the same text twice in one file
                chunks.append(
                    Chunk(
                        id=hashlib.sha256(f"{digest}\0{seen[digest]}".encode()).hexdigest()[:32],
                        source=document.source,
                        index=len(chunks),
                        start=start + offset,
                        end=start + offset + len(piece),
                        heading=heading,
                        text=piece,
                    )
                )
        return chunks


def sections_of(text: str) -> list[tuple[str, int, int]]:
    """(heading path, start, end) of each section, headings inside code fences ignored."""
    fences = iter(_fenced_ranges(text))
    fence = next(fences, None)
    headings = []
    for match in _HEADING.finditer(text):  # both in order of position: one pass
        while fence is not None and fence[1] <= match.start():
            fence = next(fences, None)
        if fence is None or match.start() < fence[0]:
            headings.append(match)
    sections: list[tuple[str, int, int]] = []
    path: list[tuple[int, str]] = []
    start = 0
    for match in headings:
        if match.start() > start:
            sections.append((" > ".join(t for _, t in path), start, match.start()))
        level, title = len(match.group(1)), re.sub(r"[*_`]+", "", match.group(2)).strip()
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, title))
        start = match.end()
    sections.append((" > ".join(t for _, t in path), start, len(text)))
    return [s for s in sections if text[s[1] : s[2]].strip()]


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    """Where code fences are: a `#` line inside one is code, not a heading."""
    marks = [m.start() for m in _FENCE.finditer(text)]
    return [(marks[i], marks[i + 1]) for i in range(0, len(marks) - 1, 2)]
