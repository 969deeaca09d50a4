"""Split a document into chunks that fit a token budget and stand on their own.

Markdown (and what the loaders turn into Markdown: HTML, PDF) is split at its headings first,
so a chunk never spans two sections and carries its heading path ("Guide > Install > Linux");
a long section is split further on its own structure (blocks, list items, sentences) by
`semantic-text-splitter`, with some overlap. Plain text is split the same way, without headings.
Sizes are in tokens, estimated at four characters each (what embedding models average on
English; the budget keeps a margin for other text).

The splitter looks for the first sentence of the rest of the text before each chunk: on text
without sentence breaks (a one-paragraph page, a dump of words) that is a scan to the end, and
chunking grows with the square of the length (2 MB took 14 s, 20 MB hours). It is given the text
in windows of `WINDOW_CHUNKS` chunks instead; the chunks that end in a window's last chunk's
worth of text are set aside and the next window starts where they started, so the splitter sees
as much text ahead of every chunk it keeps as it needs, and the chunks are the ones it gives on
the whole text, in time linear in the length.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from semantic_text_splitter import MarkdownSplitter, TextSplitter

from ..store import Chunk

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .loaders import Document

CHARS_PER_TOKEN = 4
WINDOW_CHUNKS = 8
# The title is the rest of the line, its closing #s stripped in Python: a lazy `(.+?)[ \t#]*$`
# backtracks over every space or # of a long line (a 40 kB heading line took 12 s).
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+)$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)


def estimate_tokens(text: str) -> int:
    """Tokens in `text`, roughly: used for chunk sizes and the prompt's context budget."""
    return len(text) // CHARS_PER_TOKEN + 1


@dataclass(frozen=True)
class Chunker:
    """Chunks of at most `max_tokens`, with `overlap_tokens` shared between neighbours."""

    max_tokens: int
    overlap_tokens: int

    def fingerprint(self) -> str:
        """Changes whenever the same file would give other chunks."""
        return f"chunks:{self.max_tokens}:{self.overlap_tokens}:v2"

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
            for offset, piece in _windowed(splitter, document.text, start, end, capacity):
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


def _windowed(
    splitter: MarkdownSplitter | TextSplitter, text: str, start: int, end: int, capacity: int
) -> Iterator[tuple[int, str]]:
    """The splitter's chunks of `text[start:end]` (offsets from `start`), a window at a time."""
    window = WINDOW_CHUNKS * capacity
    cursor = start
    while end - cursor > window:
        pieces = splitter.chunk_indices(text[cursor : cursor + window])
        # The chunks that end two chunks' worth before the window's end had the text after them
        # in view: kept. The next window starts where the first chunk not kept starts.
        kept = [piece for piece in pieces if piece[0] + len(piece[1]) <= window - 2 * capacity]
        for offset, piece in kept:
            yield cursor - start + offset, piece
        if len(pieces) > len(kept):
            step = pieces[len(kept)][0]
        else:  # blank text after the chunks kept, or only blank text
            step = kept[-1][0] + len(kept[-1][1]) if kept else window
        cursor += max(step, 1)
    for offset, piece in splitter.chunk_indices(text[cursor:end]):
        yield cursor - start + offset, piece


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
        title = re.sub(r"[*_`]+", "", match.group(2).rstrip(" \t#")).strip()
        level = len(match.group(1))
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
