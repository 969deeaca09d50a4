"""Plain text and Markdown: decoded as UTF-8 (else Latin-1); binary content is refused."""

from __future__ import annotations

from .base import LoadError


def decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise LoadError("binary content (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def convert(data: bytes, _max_bytes: int) -> str:
    return decode(data)
