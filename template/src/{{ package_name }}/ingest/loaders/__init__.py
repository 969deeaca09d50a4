"""Files to text, treating every document as hostile: one module per format, and the safe
file walk (`files`); every file read within the byte cap and a time budget.

Every loader returns Markdown-ish text so that chunks follow the document's structure whatever
its format: headings become `#` lines, blocks paragraphs, list items `-` lines, tables pipe
tables under their header row, code stays code (`text`, `html`, `pdf`, `office`).
"""

from __future__ import annotations

import hashlib
import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from . import html, office, pdf, text
from .base import FORMATS, Document, LoadError, unread
from .files import discover, read_capped

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

__all__ = ["FORMATS", "Document", "LoadError", "discover", "load", "read_capped", "time_budget"]


def load(source: str, path: Path, *, max_bytes: int, seconds: float) -> Document:
    """Read and convert one file within the byte cap and the time budget. Whatever goes wrong
    in a converter on a hostile file is a `LoadError` naming the format and the error's kind."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LoadError(unread(path.suffix.lower()))
    data = read_capped(path, max_bytes)
    with time_budget(seconds):
        try:
            text = _CONVERTERS[fmt](data, max_bytes)
        except LoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - a parser's own error on a hostile file
            raise LoadError(f"an unreadable {_NAMES[fmt]} file ({type(exc).__name__})") from None
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


_CONVERTERS: dict[str, Callable[[bytes, int], str]] = {
    "markdown": text.convert, "text": text.convert, "html": html.convert, "pdf": pdf.convert,
    "docx": office.docx, "pptx": office.pptx,
}  # fmt: skip
_NAMES = {
    "markdown": "Markdown", "text": "text", "html": "HTML", "pdf": "PDF", "docx": "Word",
    "pptx": "PowerPoint",
}  # fmt: skip
