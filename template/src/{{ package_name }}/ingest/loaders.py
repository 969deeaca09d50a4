"""Files to text, treating every document as hostile.

Only regular files under the documents folder are read: a link is followed only when its target
stays inside the folder, dotfiles (`.env`) and dot-folders are skipped, and pipes, devices and
sockets are never opened for reading. At most the byte cap is read, whatever the file claims
its size is; each file gets a time budget; the HTML reader is one linear pass with a depth and an
element cap. Every loader returns Markdown-ish text (HTML headings become `#` lines, PDF pages
`## Page N` sections) so that chunks follow the document's structure whatever its format.
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

FORMATS = {
    ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text", ".rst": "text",
    ".html": "html", ".htm": "html", ".pdf": "pdf",
}  # fmt: skip
MAX_HTML_DEPTH = 256
MAX_HTML_ELEMENTS = 200_000
MAX_PDF_PAGES = 2_000
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = frozenset((
    "p", "div", "li", "tr", "br", "section", "article", "pre", "blockquote", "table", "ul", "ol",
    "dd", "dt", "header", "footer", "main", "td", "th",
))  # fmt: skip
_HIDDEN = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe"})


class LoadError(Exception):
    """A file that is not indexed; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Document:
    """One readable file: its text and what identifies it in the index."""

    source: str
    """The path relative to the documents folder, with `/` separators."""
    format: str
    text: str
    sha256: str


def discover(root: Path) -> Iterator[tuple[str, Path | LoadError]]:
    """Every candidate file under `root`: (source, path to read) or (source, why it is skipped)."""
    base = root.resolve()
    stack = [base]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as exc:
            yield (_relative(folder, base), LoadError(f"cannot list the folder: {exc.strerror}"))
            continue
        for entry in entries:
            source = _relative(Path(entry.path), base)
            if entry.name.startswith("."):
                continue  # dotfiles and dot-folders: .env, .git, editor state
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
                continue
            if Path(entry.name).suffix.lower() not in FORMATS:
                continue
            yield source, _checked(Path(entry.path), base)


def _checked(path: Path, base: Path) -> Path | LoadError:
    """The path to read, or why it must not be read (outside the folder, not a regular file)."""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return LoadError("a link to nothing (or a loop of links)")
    if not target.is_relative_to(base):
        return LoadError("a link that leaves the documents folder")
    try:
        mode = target.stat().st_mode
    except OSError as exc:
        return LoadError(f"cannot read it: {exc.strerror}")
    if not stat.S_ISREG(mode):
        return LoadError("not a regular file (a pipe, a device or a socket)")
    return target


def _relative(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix() if path != base else "."


def read_capped(path: Path, max_bytes: int) -> bytes:
    """At most `max_bytes` of a regular file: the cap holds whatever `stat` says its size is."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise LoadError(f"cannot open it: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):  # replaced since it was checked
            raise LoadError("not a regular file (a pipe, a device or a socket)")
        # The size `stat` gives, then more only if it grew: reading `max_bytes` at once would
        # allocate the whole cap for every file.
        wanted = min(status.st_size, max_bytes) + 1
        data = handle.read(wanted)
        if len(data) == wanted <= max_bytes:
            data += handle.read(max_bytes + 1 - len(data))
    if len(data) > max_bytes:
        raise LoadError(f"larger than the {max_bytes // 1_000_000} MB cap (RAG_MAX_DOCUMENT_MB)")
    return data


def load(source: str, path: Path, *, max_bytes: int, seconds: float) -> Document:
    """Read and convert one file within the byte cap and the time budget."""
    data = read_capped(path, max_bytes)
    fmt = FORMATS[path.suffix.lower()]
    with time_budget(seconds):
        text = (
            _pdf(data) if fmt == "pdf" else _html(_decode(data)) if fmt == "html" else _decode(data)
        )
    text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()
    if not text:
        raise LoadError("no text in it")
    return Document(source, fmt, text, hashlib.sha256(data).hexdigest())


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Stop a conversion that takes longer than `seconds` (main thread only: a CLI ingest)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(_signum: int, _frame: object) -> None:
        raise LoadError(f"took longer than {seconds:g} s to read (RAG_FILE_SECONDS)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise LoadError("binary content (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


class _HtmlText(HTMLParser):
    """Text of an HTML page in one pass: headings as `#` lines, blocks as lines, no scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[str] = []
        self.hidden = 0
        self.elements = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:  # noqa: ARG002 - HTMLParser's
        self.elements += 1
        if self.elements > MAX_HTML_ELEMENTS:
            raise LoadError(f"more than {MAX_HTML_ELEMENTS} HTML elements")
        if tag in {"br", "hr", "img", "input", "meta", "link"}:
            self.parts.append("\n")
            return
        if len(self.open) >= MAX_HTML_DEPTH:
            raise LoadError(f"HTML nested deeper than {MAX_HTML_DEPTH} elements")
        self.open.append(tag)
        self.hidden += tag in _HIDDEN
        if tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.open:
            return  # a stray end tag
        while self.open:  # close what was left open inside it
            closed = self.open.pop()
            self.hidden -= closed in _HIDDEN
            if closed == tag:
                break
        if tag in _HEADINGS or tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(" ".join(data.split()) if data.strip() else " ")


def _html(text: str) -> str:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader  # noqa: PLC0415 - only PDFs need it
    from pypdf.errors import PdfReadError  # noqa: PLC0415

    try:
        reader = PdfReader(BytesIO(data))
        if reader.is_encrypted:
            raise LoadError("an encrypted PDF")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise LoadError(f"more than {MAX_PDF_PAGES} pages")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise LoadError(f"a broken PDF ({type(exc).__name__})") from None
    return "\n\n".join(f"## Page {n}\n\n{text}" for n, text in enumerate(pages, 1) if text)
