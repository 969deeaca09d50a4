"""Word files through mammoth (to HTML, then as HTML), PowerPoint slides from their XML
(`# Slide N: title`, then the text, tables and notes).

Office files are zip archives: the archive is checked (parts, inflated size against the byte
cap, compression ratio; every XML part well-formed, without a DTD (so no entity expansion) and
nested no deeper than MAX_XML_DEPTH) before a converter reads it: mammoth and ElementTree walk
elements recursively, so a deeply nested part would cost seconds before failing.
"""

from __future__ import annotations

import os
import re
import zipfile
from io import BytesIO
from pathlib import PurePosixPath
from xml.etree import ElementTree
from xml.parsers import expat

from .base import LoadError
from .html import markdown

MAX_ZIP_MEMBERS = 5_000
MAX_ZIP_RATIO = 100  # inflated size to compressed size, for a part over ZIP_RATIO_FROM bytes
ZIP_RATIO_FROM = 1_000_000
MAX_XML_DEPTH = 256  # Word nests tables in tables; 256 levels is far beyond what it writes
_DTD = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_PML = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_DML = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"


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
            _check_xml(archive, member)
    return archive


def _check_xml(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    """Refuse an XML part with a DTD (Office never writes one, entity bombs need one), nested
    deeper than MAX_XML_DEPTH, or not well-formed; read in pieces by expat, which never recurses."""
    depth = 0

    def start(_name: str, _attributes: object) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_XML_DEPTH:
            raise LoadError(f"{member.filename} is nested deeper than {MAX_XML_DEPTH} elements")

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    tail = b""
    with archive.open(member) as part:
        try:
            while piece := part.read(1 << 20):
                if _DTD.search(tail + piece):  # before expat sees the piece
                    raise LoadError(f"{member.filename} declares a DTD (entities are not read)")
                tail = piece[-16:]
                parser.Parse(piece, False)
            parser.Parse(b"", True)
        except expat.ExpatError as exc:
            raise LoadError(f"{member.filename} is not well-formed XML ({exc})") from None


def docx(data: bytes, max_bytes: int) -> str:
    import mammoth  # noqa: PLC0415 - only Word files need it

    _archive(data, max_bytes).close()
    # Images are left unread: only their alt text would be kept, and markdownify drops it.
    skip_images = mammoth.images.img_element(lambda _image: {})
    html = mammoth.convert_to_html(BytesIO(data), convert_image=skip_images).value
    return markdown(str(html))


def pptx(data: bytes, max_bytes: int) -> str:
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
