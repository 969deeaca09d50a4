"""PDF pages through pypdf, each under `## Page N`; encrypted or very long files are refused."""

from __future__ import annotations

from io import BytesIO

from .base import LoadError

MAX_PDF_PAGES = 2_000


def convert(data: bytes, _max_bytes: int) -> str:
    from pypdf import PdfReader  # noqa: PLC0415 - only PDFs need it

    reader = PdfReader(BytesIO(data))
    if reader.is_encrypted:
        raise LoadError("an encrypted PDF")
    if len(reader.pages) > MAX_PDF_PAGES:
        raise LoadError(f"more than {MAX_PDF_PAGES} pages")
    pages = [(page.extract_text() or "").strip() for page in reader.pages]
    return "\n\n".join(f"## Page {n}\n\n{text}" for n, text in enumerate(pages, 1) if text)
