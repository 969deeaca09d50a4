"""The index's files: a link to the live database, so that a rebuild swaps in whole.

`RAG_INDEX_PATH` is a symbolic link to the live database file (`index.sqlite3.<ms>`, with its
`-wal`, `-shm` and `.words` beside it); a rebuild writes a new file next to it and moves the
link in one step, so readers switch from the complete old index to the complete new one.
"""

from __future__ import annotations

import shutil
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

DATABASE_FILES = ("", "-wal", "-shm", ".words")
"""What one database is made of, as suffixes of its file name."""


def link_of(path: Path) -> Path | None:
    """Where a link points (one system call; a path's `resolve` takes several), else None."""
    try:
        return path.readlink()
    except OSError:
        return None


def new_file(path: Path) -> Path:
    """A fresh database file name next to the link, e.g. `index.sqlite3.1764483000123`."""
    return path.with_name(f"{path.name}.{time.time_ns() // 1_000_000}")


def link(link: Path, target: Path) -> None:
    link.symlink_to(target.name)


def remove(database: Path, suffixes: Sequence[str] = DATABASE_FILES) -> None:
    for suffix in suffixes:
        path = Path(f"{database}{suffix}")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def discard(staging: Path, database: Path) -> None:
    """What a failed rebuild left behind; a disk that refuses even this keeps it."""
    with suppress(OSError):
        remove(database)
        staging.unlink(missing_ok=True)
