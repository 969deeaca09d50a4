"""Split documents into chunks that fit a token budget and stand on their own.

Three strategies, chosen per corpus (settings) and per folder (an override file):

- ``markdown``: split at headings first, so every chunk lies inside one section and carries its
  heading path ("Guide > Install > Linux"); a section larger than the budget is split further
  on Markdown structure (blocks, list items, sentences) by ``semantic-text-splitter``.
- ``recursive``: split by ever finer separators (blank lines, lines, sentences, words) until the
  pieces fit, with overlap between neighbours: good for prose without structure.
- ``fixed``: windows of a fixed number of tokens with overlap, aligned to word boundaries:
  predictable sizes for evaluation baselines.

``auto`` picks ``markdown`` for formats that carry headings and ``recursive`` for plain text.
Token counts come from a ``count_tokens`` callable so that budgets match the model's tokenizer
and chunking works offline.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Literal, get_args

from semantic_text_splitter import MarkdownSplitter, TextSplitter

from .settings import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from .documents import Document, DocumentFormat

CountTokens = Callable[[str], int]
StrategyName = Literal["auto", "markdown", "recursive", "fixed"]
HEADING_SEPARATOR = " > "

_HEADING_FORMATS: frozenset[DocumentFormat] = frozenset({"markdown", "html", "pdf"})
# A heading path may eat at most this share of a chunk's budget; the text keeps the rest.
_MAX_HEADING_SHARE = 0.5


class ChunkingConfigError(ConfigError):
    """An invalid chunking configuration (settings or a per-folder override file)."""


@dataclass(frozen=True)
class ChunkingConfig:
    """How one group of documents is chunked."""

    strategy: StrategyName = "auto"
    max_tokens: int = 256
    overlap_tokens: int = 32

    def __post_init__(self) -> None:
        for name in ("max_tokens", "overlap_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ChunkingConfigError(f"{name} must be an integer, got {value!r}")
        if self.strategy not in get_args(StrategyName):
            raise ChunkingConfigError(
                f"unknown chunking strategy {self.strategy!r}; "
                f"use one of {', '.join(get_args(StrategyName))}"
            )
        if self.max_tokens < 8:  # noqa: PLR2004 - below this no heading plus sentence fits
            raise ChunkingConfigError(f"max_tokens must be at least 8, got {self.max_tokens}")
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise ChunkingConfigError(
                f"overlap_tokens must be >= 0 and < max_tokens ({self.max_tokens}), "
                f"got {self.overlap_tokens}"
            )

    def resolve(self, fmt: DocumentFormat) -> Literal["markdown", "recursive", "fixed"]:
        """The concrete strategy for a document format."""
        if self.strategy == "auto":
            return "markdown" if fmt in _HEADING_FORMATS else "recursive"
        return self.strategy

    def fingerprint(self) -> str:
        """Changes whenever chunks could change, so that re-ingest re-chunks affected files."""
        return "chunking:{strategy}:{max_tokens}:{overlap_tokens}".format(**asdict(self))


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, with where it came from and what identifies its content."""

    id: str
    """Stable while the chunk's content is unchanged (even when other chunks move)."""
    source: str
    index: int
    start: int
    """Character offset of the chunk in the document text (inclusive)."""
    end: int
    """Character offset of the chunk's end in the document text (exclusive)."""
    heading: str
    """Heading path, e.g. "Guide > Install > Linux" ("" before the first heading)."""
    text: str
    hash: str
    """sha256 of the indexed text (heading path and text)."""
    tokens: int

    @property
    def indexed_text(self) -> str:
        """What is embedded: the heading path gives a short chunk the context it lacks."""
        return indexed_text(self.heading, self.text)


def indexed_text(heading: str, text: str) -> str:
    """The text a chunk is embedded and counted as."""
    return f"{heading}\n\n{text}" if heading else text


def content_hash(heading: str, text: str) -> str:
    """The hash that decides whether a chunk changed between two ingests."""
    return hashlib.sha256(indexed_text(heading, text).encode("utf-8")).hexdigest()


def chunk_id(source: str, digest: str, occurrence: int) -> str:
    """Derive an id from content, not position: inserting a paragraph keeps later ids."""
    raw = f"{source}\x00{digest}\x00{occurrence}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path."""

    heading: str
    start: int
    """Where the body starts (after the heading line)."""
    end: int
    anchor: int
    """Where the heading line starts: text from here on belongs to this section."""


_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.DOTALL)


@dataclass(frozen=True)
class _Heading:
    level: int
    title: str
    start: int
    """Offset of the heading's first line."""
    body: int
    """Offset just after the heading (where its section's text begins)."""


def _headings(text: str, offset: int) -> Iterator[_Heading]:
    """ATX (``## Title``) and setext (``Title`` over ``---``) headings outside code fences."""
    fence: str | None = None
    previous: tuple[int, str] | None = None  # a paragraph line that a setext rule may promote
    for line in text[offset:].splitlines(keepends=True):
        start, offset = offset, offset + len(line)
        stripped = line.rstrip("\n")
        fence_match = _FENCE.match(stripped)
        if fence is not None or fence_match:
            if fence is None and fence_match:
                fence = fence_match.group(1)
            elif fence_match and fence is not None and fence_match.group(1)[0] == fence[0]:
                fence = None
            previous = None
            continue
        atx = _ATX.match(stripped)
        setext = _SETEXT.match(stripped)
        if atx:
            yield _Heading(len(atx.group(1)), _clean_title(atx.group(2) or ""), start, offset)
        elif setext and previous is not None:
            level = 1 if setext.group(1)[0] == "=" else 2
            yield _Heading(level, _clean_title(previous[1]), previous[0], offset)
        elif stripped.strip() and not stripped.lstrip().startswith(("-", "*", "+", ">", "|")):
            previous = (start, stripped)
            continue
        previous = None


def markdown_sections(text: str) -> list[Section]:
    """Split Markdown at its headings, outside code fences and YAML front matter.

    Sections follow each other without gaps; a section's body may be empty (a heading followed
    directly by a sub-heading): it still marks where its heading starts.
    """
    front = _FRONT_MATTER.match(text)
    begin = front.end() if front else 0
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    anchor = body = begin
    for heading in _headings(text, begin):
        if heading.start > anchor or path:
            sections.append(Section(_join(path), body, heading.start, anchor))
        while path and path[-1][0] >= heading.level:
            path.pop()
        if heading.title:
            path.append((heading.level, heading.title))
        anchor, body = heading.start, heading.body
    if len(text) > anchor or path:
        sections.append(Section(_join(path), body, len(text), anchor))
    return sections


def _clean_title(title: str) -> str:
    title = re.sub(r"[*_`]+", "", title)
    return re.sub(r"\s+", " ", title).strip()


def _join(path: Sequence[tuple[int, str]]) -> str:
    return HEADING_SEPARATOR.join(title for _, title in path)


class Chunker:
    """Chunk documents with a token counter; splitters are built once per budget and reused."""

    def __init__(self, count_tokens: CountTokens, config: ChunkingConfig | None = None) -> None:
        self._count = count_tokens
        self.config = config or ChunkingConfig()
        self._splitters: dict[tuple[str, int, int], TextSplitter | MarkdownSplitter] = {}

    def chunk(self, document: Document, config: ChunkingConfig | None = None) -> list[Chunk]:
        """Chunk one document; ``config`` overrides the default (per-folder settings)."""
        config = config or self.config
        strategy = config.resolve(document.format)
        text = document.text
        sections = (markdown_sections(text) if document.format in _HEADING_FORMATS else []) or [
            Section("", 0, len(text), 0)
        ]
        spans: list[tuple[str, int, int]]
        if strategy == "markdown":
            spans = self._by_sections(text, sections, config)
        elif strategy == "recursive":
            spans = self._with_headings(self._recursive(text, config), sections)
        else:
            spans = self._with_headings(self._fixed(text, config), sections)
        return self._make_chunks(document.source, text, spans)

    def _splitter(self, kind: str, capacity: int, overlap: int) -> TextSplitter | MarkdownSplitter:
        key = (kind, capacity, overlap)
        splitter = self._splitters.get(key)
        if splitter is None:
            factory = MarkdownSplitter if kind == "markdown" else TextSplitter
            splitter = factory.from_callback(self._count, capacity, overlap=overlap, trim=True)
            self._splitters[key] = splitter
        return splitter

    def _by_sections(
        self, text: str, sections: Sequence[Section], config: ChunkingConfig
    ) -> list[tuple[str, int, int]]:
        spans: list[tuple[str, int, int]] = []
        for section in sections:
            heading_cost = self._count(f"{section.heading}\n\n") if section.heading else 0
            budget = max(
                config.max_tokens - heading_cost,
                int(config.max_tokens * (1 - _MAX_HEADING_SHARE)),
            )
            overlap = min(config.overlap_tokens, budget - 1)
            splitter = self._splitter("markdown", budget, overlap)
            body = text[section.start : section.end]
            for offset, piece in splitter.chunk_indices(body):
                start = section.start + offset
                spans.append((section.heading, start, start + len(piece)))
        return spans

    def _recursive(self, text: str, config: ChunkingConfig) -> list[tuple[int, int]]:
        splitter = self._splitter("text", config.max_tokens, config.overlap_tokens)
        return [(offset, offset + len(piece)) for offset, piece in splitter.chunk_indices(text)]

    def _fixed(self, text: str, config: ChunkingConfig) -> list[tuple[int, int]]:
        """Windows of at most ``max_tokens`` tokens, stepping back ``overlap_tokens`` each time.

        Windows are aligned to whitespace-delimited words and measured on the real substring,
        so counts match the tokenizer exactly; binary search keeps it to a few calls a window.
        """
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        spans: list[tuple[int, int]] = []
        i = 0
        while i < len(words):
            first = words[i][0]
            if self._count(text[first : words[i][1]]) > config.max_tokens:
                # One "word" longer than the budget (a URL, a base64 blob): cut it by characters.
                splitter = self._splitter("text", config.max_tokens, 0)
                spans.extend(
                    (first + offset, first + offset + len(piece))
                    for offset, piece in splitter.chunk_indices(text[first : words[i][1]])
                )
                i += 1
                continue
            # Largest j with words[i..j] within budget (a word is at least one token).
            lo, hi = i, min(len(words) - 1, i + config.max_tokens - 1)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._count(text[first : words[mid][1]]) <= config.max_tokens:
                    lo = mid
                else:
                    hi = mid - 1
            end_word = lo
            spans.append((first, words[end_word][1]))
            if end_word == len(words) - 1:
                break
            i = self._overlap_start(text, words, i, end_word, config.overlap_tokens)
        return spans

    def _overlap_start(
        self, text: str, words: Sequence[tuple[int, int]], start: int, end: int, overlap: int
    ) -> int:
        """First word of the next window: the smallest tail of this window within ``overlap``."""
        if overlap == 0:
            return end + 1
        lo, hi = start + 1, end + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self._count(text[words[mid][0] : words[end][1]]) <= overlap:
                hi = mid
            else:
                lo = mid + 1
        return lo

    @staticmethod
    def _with_headings(
        spans: Sequence[tuple[int, int]], sections: Sequence[Section]
    ) -> list[tuple[str, int, int]]:
        """Give each span the heading path in force where it starts."""
        result: list[tuple[str, int, int]] = []
        k = 0
        for start, end in spans:
            while k + 1 < len(sections) and sections[k + 1].anchor <= start:
                k += 1
            heading = sections[k].heading if sections[k].anchor <= start else ""
            result.append((heading, start, end))
        return result

    def _make_chunks(
        self, source: str, text: str, spans: Sequence[tuple[str, int, int]]
    ) -> list[Chunk]:
        chunks: list[Chunk] = []
        occurrences: dict[str, int] = {}
        for heading, start, end in spans:
            piece = text[start:end]
            if not piece.strip():
                continue
            digest = content_hash(heading, piece)
            occurrence = occurrences.get(digest, 0)
            occurrences[digest] = occurrence + 1
            chunks.append(
                Chunk(
                    id=chunk_id(source, digest, occurrence),
                    source=source,
                    index=len(chunks),
                    start=start,
                    end=end,
                    heading=heading,
                    text=piece,
                    hash=digest,
                    tokens=self._count(indexed_text(heading, piece)),
                )
            )
        return chunks


class FolderConfigs:
    """Per-folder chunking overrides: the nearest override file up to the corpus root wins.

    The override file (``.chunking.toml`` by default) holds any of ``strategy``,
    ``max_tokens`` and ``overlap_tokens``; keys it leaves out keep the parent's values.
    """

    _KEYS = frozenset({"strategy", "max_tokens", "overlap_tokens"})

    def __init__(self, default: ChunkingConfig, filename: str) -> None:
        self.default = default
        self.filename = filename
        self._cache: dict[Path, ChunkingConfig] = {}

    def for_file(self, path: Path, root: Path) -> ChunkingConfig:
        """The configuration for ``path``, a file inside ``root``."""
        return self._for_dir(path.resolve().parent, root.resolve())

    def _for_dir(self, directory: Path, root: Path) -> ChunkingConfig:
        cached = self._cache.get(directory)
        if cached is not None:
            return cached
        inside = directory != root and directory.is_relative_to(root)
        parent = self._for_dir(directory.parent, root) if inside else self.default
        override = directory / self.filename
        config = self._apply(parent, override) if override.is_file() else parent
        self._cache[directory] = config
        return config

    def _apply(self, parent: ChunkingConfig, path: Path) -> ChunkingConfig:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ChunkingConfigError(f"{path}: cannot read chunking overrides: {exc}") from exc
        unknown = set(data) - self._KEYS
        if unknown:
            raise ChunkingConfigError(
                f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(self._KEYS)}"
            )
        try:
            return replace(parent, **data)
        except (TypeError, ChunkingConfigError) as exc:
            raise ChunkingConfigError(f"{path}: {exc}") from exc
