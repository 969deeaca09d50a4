"""Turn files on disk into plain text documents, one bad file never costing the good ones.

Every loader returns Markdown-ish text so that the chunker can follow headings whatever the
source format: Markdown stays as it is, HTML headings become ``#`` lines, and PDF pages become
``## Page N`` sections (page numbers are what a reader needs to check a citation in a PDF).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bs4 import BeautifulSoup, Comment, Declaration, Doctype, ProcessingInstruction, Tag
from bs4.element import NavigableString
from pypdf import PdfReader

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

logger = logging.getLogger(__name__)

DocumentFormat = Literal["markdown", "text", "html", "pdf"]

FORMATS: dict[str, DocumentFormat] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}

# How much of a file is sniffed for NUL bytes: binary formats show them in the first block.
_SNIFF_BYTES = 8192


class DocumentError(Exception):
    """A file that cannot become a document; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Document:
    """One loaded file: its text and what identifies it in the index."""

    source: str
    """Stable id of the file in the index (a POSIX path, relative to the working directory)."""
    path: Path
    format: DocumentFormat
    text: str
    sha256: str
    """Hash of the file's bytes, so that unchanged files are skipped on re-ingest."""
    size: int


@dataclass(frozen=True)
class Skipped:
    """A file that was not loaded, and why."""

    source: str
    reason: str


@dataclass
class LoadReport:
    """What a load did: the documents it produced and every file it had to leave out."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Paths given by the caller that do not exist (their old index entries can be removed)."""


def source_id(path: Path, base: Path | None = None) -> str:
    """Name a file the same way whatever path it was reached by.

    Paths inside the working directory are stored relative to it (short, portable between
    machines that check out the same repository); others are stored absolute.
    """
    resolved = path.resolve()
    base = (base or Path.cwd()).resolve()
    try:
        return resolved.relative_to(base).as_posix()
    except ValueError:
        return resolved.as_posix()


def iter_files(
    paths: Iterable[Path], *, skip_names: frozenset[str] = frozenset()
) -> Iterator[Path]:
    """Walk files and folders in a stable order, skipping hidden entries and symlinked folders.

    Hidden files (``.git``, ``.env``, editor swap files) are never documents, and following
    folder symlinks risks loops and indexing things outside the corpus.
    """
    for root in paths:
        if root.is_file():
            yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or name in skip_names:
                    continue
                yield Path(dirpath) / name


def load_documents(
    paths: Iterable[Path],
    *,
    max_bytes: int,
    base: Path | None = None,
    skip_names: frozenset[str] = frozenset(),
    on_file: Callable[[Path], None] | None = None,
) -> LoadReport:
    """Load every supported file under ``paths``; report (never raise for) files that fail."""
    report = LoadReport()
    existing: list[Path] = []
    for path in paths:
        if path.exists():
            existing.append(path)
        else:
            report.missing.append(source_id(path, base))
    seen: set[str] = set()
    for path in iter_files(existing, skip_names=skip_names):
        source = source_id(path, base)
        if source in seen:
            continue
        seen.add(source)
        if on_file is not None:
            on_file(path)
        try:
            report.documents.append(load_document(path, max_bytes=max_bytes, source=source))
        except DocumentError as exc:
            logger.info("skipped %s: %s", source, exc)
            report.skipped.append(Skipped(source=source, reason=str(exc)))
        except Exception as exc:  # a loader bug must not abort the whole run
            logger.warning("skipped %s after an unexpected error", source, exc_info=True)
            report.skipped.append(
                Skipped(source=source, reason=f"unexpected error: {type(exc).__name__}: {exc}")
            )
    return report


def load_document(path: Path, *, max_bytes: int, source: str | None = None) -> Document:
    """Load one file, raising :class:`DocumentError` with a human reason when it cannot."""
    source = source or source_id(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DocumentError(f"unsupported file type {path.suffix or '(no extension)'!r}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DocumentError(f"cannot read file: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise DocumentError(
            f"file too large ({_mb(size)} > limit {_mb(max_bytes)}; raise MAX_DOCUMENT_BYTES)"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read file: {exc.strerror or exc}") from exc
    if not data.strip():
        raise DocumentError("empty file")
    text = _EXTRACTORS[fmt](data)
    text = normalize_text(text)
    if not text.strip():
        raise DocumentError("no extractable text")
    return Document(
        source=source,
        path=path,
        format=fmt,
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        size=size,
    )


def normalize_text(text: str) -> str:
    """Unify line endings and drop trailing spaces and runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _decode_text(data: bytes) -> str:
    """Decode UTF-8 text; binary data or another encoding is a reason to skip, not to guess."""
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise DocumentError("binary content (NUL bytes), not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not valid UTF-8 text (byte {exc.start})") from exc


def _extract_markdown(data: bytes) -> str:
    return _decode_text(data)


def _extract_text(data: bytes) -> str:
    return _decode_text(data)


_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "nav", "footer", "iframe", "head")
_BLOCK_TAGS = (
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "aside",
    "blockquote",
    "ul",
    "ol",
    "dl",
    "table",
    "figure",
    "form",
    "hr",
)
_NOT_TEXT = (Comment, Declaration, Doctype, ProcessingInstruction)
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def _extract_html(data: bytes) -> str:
    """HTML to Markdown-ish text: headings become ``#`` lines, list items ``-`` lines.

    Keeping the headings lets HTML pages get heading paths like Markdown files, at the cost of
    a few tree edits rather than a full HTML-to-Markdown converter.
    """
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise DocumentError("binary content (NUL bytes), not an HTML file")
    soup = BeautifulSoup(data, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if isinstance(title_tag, Tag) else ""
    _drop_noise(soup)
    _mark_structure(soup)
    text = _tidy_lines(soup.get_text())
    has_h1 = re.search(r"^# ", text, flags=re.MULTILINE) is not None
    if title and not has_h1:
        text = f"# {title}\n\n{text}"
    return text


def _drop_noise(soup: BeautifulSoup) -> None:
    """Remove what a reader never sees (scripts, comments) or skips (navigation, footers)."""
    for node in soup.find_all(string=lambda s: isinstance(s, _NOT_TEXT)):
        node.extract()
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    # HTML collapses whitespace in text; do it before the structural newlines are added.
    for text in soup.find_all(string=True):
        if isinstance(text, NavigableString) and text.find_parent("pre") is None:
            text.replace_with(re.sub(r"\s+", " ", str(text)))


def _mark_structure(soup: BeautifulSoup) -> None:
    """Turn headings, code, lists, tables and blocks into Markdown-ish line structure."""
    for pre in soup.find_all("pre"):
        pre.replace_with(f"\n\n```\n{pre.get_text().strip(chr(10))}\n```\n\n")
    for heading in soup.find_all(_HEADINGS):
        level = int(heading.name[1])
        heading.replace_with(f"\n\n{'#' * level} {heading.get_text(' ', strip=True)}\n\n")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for item in soup.find_all(["li", "dt"]):
        item.insert_before("\n- ")
    for cell in soup.find_all(["td", "th"]):
        cell.insert_after(" | ")
    for row in soup.find_all("tr"):
        row.insert_after("\n")
    for block in soup.find_all(_BLOCK_TAGS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")


def _tidy_lines(text: str) -> str:
    """Strip the spaces and table separators left by the tree edits, except in code blocks."""
    out: list[str] = []
    in_code = False
    for line in text.split("\n"):
        if line.strip().startswith("```"):
            in_code = not in_code
            out.append(line.strip())
        elif in_code:
            out.append(line)
        else:
            out.append(line.strip().strip("|").strip() if "|" in line else line.strip())
    return "\n".join(out)


def _extract_pdf(data: bytes) -> str:
    try:
        reader = PdfReader(BytesIO(data), strict=False)
        encrypted = reader.is_encrypted and not reader.decrypt("")
        pages = [] if encrypted else [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # a parser of untrusted files can raise anything
        raise DocumentError(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    if encrypted:
        raise DocumentError("encrypted PDF (needs a password)")
    parts = [
        f"## Page {number}\n\n{text.strip()}"
        for number, text in enumerate(pages, 1)
        if text.strip()
    ]
    if not parts:
        raise DocumentError("no extractable text in PDF (scanned images need OCR)")
    return "\n\n".join(parts)


_EXTRACTORS: dict[DocumentFormat, Callable[[bytes], str]] = {
    "markdown": _extract_markdown,
    "text": _extract_text,
    "html": _extract_html,
    "pdf": _extract_pdf,
}
