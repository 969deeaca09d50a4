"""HTML to Markdown: BeautifulSoup and markdownify (no scripts, no navigation), after a linear
pass that caps the page's depth and element count."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from .base import LoadError
from .text import decode

MAX_HTML_DEPTH = 256
MAX_HTML_ELEMENTS = 200_000
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "area", "base", "col"})
_HIDDEN = ["head", "script", "style", "noscript", "template", "svg", "iframe", "object", "nav"]
# Blocks markdownify reads as inline: read as `div`, so they are paragraphs of their own.
_AS_DIV = [
    "main", "header", "footer", "aside", "figure", "address", "details", "summary", "fieldset",
    "form", "hgroup", "center",
]  # fmt: skip
# Inline formatting and links keep their words but not their markup: `**8443**` and
# `[Priya](x)` are noise to an embedding model and to a reader of the chunk.
_INLINE = [
    "a", "img", "b", "strong", "em", "i", "u", "s", "span", "font", "mark", "small", "sup", "sub",
]  # fmt: skip
_BLANK_LINES = re.compile(r"\n{3,}")


class _HtmlShape(HTMLParser):
    """One linear pass that refuses a page nested too deep or with too many elements, before
    a tree is built from it (and walked recursively by the converter)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.elements = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:  # noqa: ARG002 - HTMLParser's
        self.elements += 1
        if self.elements > MAX_HTML_ELEMENTS:
            raise LoadError(f"more than {MAX_HTML_ELEMENTS} HTML elements")
        if tag in _VOID:
            return
        if len(self.open) >= MAX_HTML_DEPTH:
            raise LoadError(f"HTML nested deeper than {MAX_HTML_DEPTH} elements")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:  # else a stray end tag
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag) :]


def convert(data: bytes, _max_bytes: int) -> str:
    return markdown(decode(data))


def markdown(html: str) -> str:
    """HTML to Markdown: words spaced as rendered, structure as Markdown, nothing hidden."""
    from bs4 import BeautifulSoup  # noqa: PLC0415 - only HTML and Word files need them
    from markdownify import MarkdownConverter  # noqa: PLC0415

    shape = _HtmlShape()
    shape.feed(html)
    shape.close()
    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup.find_all(_HIDDEN):
        hidden.decompose()
    for block in soup.find_all(_AS_DIV):
        block.name = "div"
    converter = MarkdownConverter(
        heading_style="ATX",
        bullets="-",
        strip=_INLINE,
        table_infer_header=True,
        escape_asterisks=False,
        escape_underscores=False,
        escape_misc=False,
    )
    return _BLANK_LINES.sub("\n\n", converter.convert_soup(soup))
