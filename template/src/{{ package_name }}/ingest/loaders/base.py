"""What every loader shares: the formats read, the error that skips a file, a document."""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = {
    ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text", ".rst": "text",
    ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx",
}  # fmt: skip


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


def unread(suffix: str) -> str:
    """Why a file of this extension is not read."""
    kind = f"{suffix} files" if suffix else "files without an extension"
    return f"no loader reads {kind} (formats read: {', '.join(sorted(FORMATS))})"
