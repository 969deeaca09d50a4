"""Files to text, treating every document as hostile.

Only regular files under the documents folder are read: a link is followed only when its target
stays inside the folder, dotfiles (`.env`) and dot-folders are skipped, and pipes, devices and
sockets are never opened for reading; a file no loader reads is listed as skipped, with the
formats that are read. At most the byte cap is read, whatever the file claims its size is, and
each file gets a time budget.

Every loader returns Markdown-ish text so that chunks follow the document's structure whatever
its format: headings become `#` lines, blocks paragraphs, list items `-` lines, tables pipe
tables under their header row, code stays code. HTML goes through BeautifulSoup and markdownify
(no scripts, no navigation) after a linear pass that caps its depth and element count; Word
files through mammoth (to HTML, then the same way); PowerPoint slides are read from their XML
(`# Slide N: title`, then the text, tables and notes); PDF pages through pypdf (`## Page N`).
Office files are zip archives: the archive is checked (parts, inflated size against the byte
cap, compression ratio, no DTD in any XML part, so no entity expansion) before anything
inflates it.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import stat
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from xml.etree import ElementTree

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FORMATS = {
    ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text", ".rst": "text",
    ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx",
}  # fmt: skip
MAX_HTML_DEPTH = 256
MAX_HTML_ELEMENTS = 200_000
MAX_PDF_PAGES = 2_000
MAX_ZIP_MEMBERS = 5_000
MAX_ZIP_RATIO = 100  # inflated size to compressed size, for a part over ZIP_RATIO_FROM bytes
ZIP_RATIO_FROM = 1_000_000
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
_DTD = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_PML = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_DML = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"


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
            suffix = Path(entry.name).suffix.lower()
            if suffix not in FORMATS:
                if entry.is_file():  # a folder behind a link is not followed, nor listed
                    yield source, LoadError(_unread(suffix))
                continue
            yield source, _checked(Path(entry.path), base)


def _unread(suffix: str) -> str:
    kind = f"{suffix} files" if suffix else "files without an extension"
    return f"no loader reads {kind} (formats read: {', '.join(sorted(FORMATS))})"


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
    """Read and convert one file within the byte cap and the time budget. Whatever goes wrong
    in a converter on a hostile file is a `LoadError` naming the format and the error's kind."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LoadError(_unread(path.suffix.lower()))
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


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise LoadError("binary content (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _text(data: bytes, _max_bytes: int) -> str:
    return _decode(data)


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


def _html(data: bytes, _max_bytes: int) -> str:
    return _markdown(_decode(data))


def _markdown(html: str) -> str:
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


def _pdf(data: bytes, _max_bytes: int) -> str:
    from pypdf import PdfReader  # noqa: PLC0415 - only PDFs need it

    reader = PdfReader(BytesIO(data))
    if reader.is_encrypted:
        raise LoadError("an encrypted PDF")
    if len(reader.pages) > MAX_PDF_PAGES:
        raise LoadError(f"more than {MAX_PDF_PAGES} pages")
    pages = [(page.extract_text() or "").strip() for page in reader.pages]
    return "\n\n".join(f"## Page {n}\n\n{text}" for n, text in enumerate(pages, 1) if text)


def _archive(data: bytes, max_bytes: int) -> zipfile.ZipFile:
    """An Office file's zip, checked before anything in it is inflated."""
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise LoadError("not an Office file (no zip archive in it)") from None
    members = archive.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise LoadError(f"more than {MAX_ZIP_MEMBERS} parts in its archive")
    if sum(member.file_size for member in members) > max_bytes:
        raise LoadError(
            f"inflates to more than the {max_bytes // 1_000_000} MB cap (RAG_MAX_DOCUMENT_MB)"
        )
    for member in members:
        if member.compress_type not in {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}:
            raise LoadError(f"{member.filename} is compressed in a way Office files never are")
        if member.file_size > ZIP_RATIO_FROM and (
            member.file_size > MAX_ZIP_RATIO * max(member.compress_size, 1)
        ):
            raise LoadError(f"{member.filename} is compressed over {MAX_ZIP_RATIO} to 1 (a bomb)")
        if member.filename.endswith((".xml", ".rels")):
            _no_dtd(archive, member)
    return archive


def _no_dtd(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    """Refuse an XML part with a DTD: Office never writes one, entity bombs need one."""
    tail = b""
    with archive.open(member) as part:
        while piece := part.read(1 << 20):
            if _DTD.search(tail + piece):
                raise LoadError(f"{member.filename} declares a DTD (entities are not read)")
            tail = piece[-16:]


def _docx(data: bytes, max_bytes: int) -> str:
    import mammoth  # noqa: PLC0415 - only Word files need it

    _archive(data, max_bytes).close()
    # Images are left unread: only their alt text would be kept, and markdownify drops it.
    skip_images = mammoth.images.img_element(lambda _image: {})
    html = mammoth.convert_to_html(BytesIO(data), convert_image=skip_images).value
    return _markdown(str(html))


def _pptx(data: bytes, max_bytes: int) -> str:
    """Each slide in the presentation's order: `# Slide N: title`, its text, tables, notes."""
    with _archive(data, max_bytes) as archive:
        base = PurePosixPath("ppt")
        targets = _relations(archive, base / "_rels/presentation.xml.rels")
        order = _xml(archive, str(base / "presentation.xml")).iter(f"{_PML}sldId")
        slides: list[str] = []
        for number, slide_id in enumerate(order, 1):
            path = targets.get(slide_id.get(f"{_REL}id", ""))
            if path is None:
                continue
            title, body = _slide(_xml(archive, str(path)))
            notes = _notes(archive, path)
            heading = f"# Slide {number}: {title}" if title else f"# Slide {number}"
            slides.append("\n\n".join([heading, *body, *notes]))
    return "\n\n".join(slides)


def _xml(archive: zipfile.ZipFile, name: str) -> ElementTree.Element:
    try:
        with archive.open(name) as part:
            return ElementTree.parse(part).getroot()  # noqa: S314 - checked: no DTD, bounded size
    except KeyError:
        raise LoadError(f"a broken PowerPoint file ({name} is missing)") from None


def _relations(archive: zipfile.ZipFile, rels: PurePosixPath) -> dict[str, PurePosixPath]:
    """A part's relations: id to the path of the part it points at."""
    if str(rels) not in archive.namelist():
        return {}
    folder = rels.parent.parent
    found = {}
    for relation in _xml(archive, str(rels)).iter(f"{_PKG_REL}Relationship"):
        target = relation.get("Target", "")
        path = target.lstrip("/") if target.startswith("/") else os.path.normpath(folder / target)
        found[relation.get("Id", "")] = PurePosixPath(path)
    return found


def _slide(root: ElementTree.Element) -> tuple[str, list[str]]:
    """A slide's title and its blocks: text boxes, list items, tables, in document order."""
    title = ""
    blocks: list[str] = []
    for element in root.iter():
        if element.tag == f"{_DML}tbl":
            rows = [
                [_paragraphs(cell, " ").replace("|", "/") for cell in row.iter(f"{_DML}tc")]
                for row in element.iter(f"{_DML}tr")
            ]
            if rows:
                head, *rest = rows
                lines = [head, ["---"] * len(head), *rest]
                blocks.append("\n".join("| " + " | ".join(line) + " |" for line in lines))
        elif element.tag == f"{_PML}sp":
            kind = next((ph.get("type", "body") for ph in element.iter(f"{_PML}ph")), "")
            text = _paragraphs(element, "\n", bullets=kind == "body")
            if kind in {"title", "ctrTitle"} and not title:
                title = " ".join(text.split())
            elif text:
                blocks.append(text)
    return title, blocks


def _paragraphs(element: ElementTree.Element, sep: str, *, bullets: bool = False) -> str:
    lines = []
    for paragraph in element.iter(f"{_DML}p"):
        words = "".join(
            (node.text or "") if node.tag == f"{_DML}t" else " "
            for node in paragraph.iter()
            if node.tag in {f"{_DML}t", f"{_DML}br"}
        ).strip()
        if words:
            properties = paragraph.find(f"{_DML}pPr")
            level = int(properties.get("lvl", "0")) if properties is not None else 0
            lines.append(f"{'  ' * min(level, 8)}- {words}" if bullets else words)
    return sep.join(lines)


def _notes(archive: zipfile.ZipFile, slide: PurePosixPath) -> list[str]:
    rels = slide.parent / "_rels" / f"{slide.name}.rels"
    for path in _relations(archive, rels).values():
        if path.parent.name == "notesSlides" and str(path) in archive.namelist():
            root = _xml(archive, str(path))
            text = "\n".join(
                _paragraphs(shape, "\n")
                for shape in root.iter(f"{_PML}sp")
                if any(ph.get("type") == "body" for ph in shape.iter(f"{_PML}ph"))
            ).strip()
            return [f"Notes: {text}"] if text else []
    return []


_CONVERTERS: dict[str, Callable[[bytes, int], str]] = {
    "markdown": _text, "text": _text, "html": _html, "pdf": _pdf, "docx": _docx, "pptx": _pptx,
}  # fmt: skip
_NAMES = {
    "markdown": "Markdown", "text": "text", "html": "HTML", "pdf": "PDF", "docx": "Word",
    "pptx": "PowerPoint",
}  # fmt: skip
