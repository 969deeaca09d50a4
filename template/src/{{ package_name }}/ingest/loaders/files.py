"""The safe file walk: only regular files under the documents folder, at most the byte cap.

A link is followed only when its target stays inside the folder, dotfiles (`.env`) and
dot-folders are skipped, and pipes, devices and sockets are never opened for reading; a file no
loader reads is listed as skipped, with the formats that are read. At most the byte cap is read,
whatever the file claims its size is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from .base import FORMATS, LoadError, unread

if TYPE_CHECKING:
    from collections.abc import Iterator


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
                    yield source, LoadError(unread(suffix))
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
