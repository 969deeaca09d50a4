"""The index in one SQLite file and a words index beside it: Tantivy for words, numpy for vectors.

No server. Chunks, their vectors and the indexed files live in SQLite (this module: the tables,
reads and writes, the atomic rebuild); words are ranked by Tantivy in a folder beside the file,
kept in step through a change log (`words`); vectors are searched through binary codes held in
memory, re-ranked exactly (`vectors`), reloaded when any process wrote (`PRAGMA data_version`);
`RAG_INDEX_PATH` is a link to the live database file, moved in one step by a rebuild (`files`).
An index written by an older release is upgraded where it is opened (`legacy`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from ... import legacy
from ...config import Group, Settings, load
from ...errors import StoreError
from ..base import Chunk, Hit, search_terms
from . import files, vectors, words
from .vectors import RESCORED

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import numpy.typing as npt
    import tantivy

_COLUMNS = "c.id, c.source, c.idx, c.start, c.end_, c.heading, c.text"
_SCHEMA = """
PRAGMA journal_mode = WAL;
-- Commits do not wait for the disk: a power loss can undo the last files ingested, not corrupt.
PRAGMA synchronous = NORMAL;
-- Reads map the file instead of copying pages: the vectors re-ranked for a question are random.
PRAGMA mmap_size = 1073741824;
CREATE TABLE IF NOT EXISTS sources (source TEXT PRIMARY KEY, fingerprint TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, source TEXT NOT NULL, idx INTEGER,
    start INTEGER, end_ INTEGER, heading TEXT NOT NULL, text TEXT NOT NULL, vector BLOB,
    code BLOB
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
-- Chunks whose words index entry is not yet replayed (see the module's documentation).
CREATE TABLE IF NOT EXISTS words_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, chunk INTEGER);
CREATE TRIGGER IF NOT EXISTS chunks_words_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO words_log(chunk) VALUES (new.rowid);
END;
CREATE TRIGGER IF NOT EXISTS chunks_words_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO words_log(chunk) VALUES (old.rowid);
END;
CREATE TRIGGER IF NOT EXISTS chunks_words_update AFTER UPDATE OF heading, text ON chunks BEGIN
    INSERT INTO words_log(chunk) VALUES (new.rowid);
END;
"""
__all__ = ["RESCORED", "SQLiteStore", "SqliteSettings", "open_store"]

logger = logging.getLogger(__name__)


class SqliteSettings(Group):
    """Where the index lives."""

    index_path: Path = Field(default=Path("data/index.sqlite3"), alias="RAG_INDEX_PATH")


class SQLiteStore:
    """The index in one file, safe to share between threads and processes."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._codes: tuple[int, npt.NDArray[np.int64], npt.NDArray[np.uint64]] | None = None
        self._searcher: tuple[int, tantivy.Searcher] | None = None
        self._replayed = time.monotonic()
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            if not self.path.exists() and not self.path.is_symlink():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                files.link(self.path, files.new_file(self.path))
            self._link = files.link_of(self.path)
            self._target = self.path.resolve()
            db = sqlite3.connect(
                self._target, timeout=30, check_same_thread=False, isolation_level=None
            )
            db.executescript(_SCHEMA)
            legacy.upgrade_sqlite(db, vectors.code)
            self._words = words.open_words(db, words.folder_of(self._target))
        except (sqlite3.Error, OSError, ValueError) as exc:
            raise StoreError(f"cannot open the index at {self.path}: {exc}") from None
        return db

    def _current(self) -> sqlite3.Connection:
        """The connection, reopened when a rebuild has moved the link to a new file."""
        if files.link_of(self.path) != self._link:
            self._db.close()
            self._db = self._open()
            self._codes = None
            self._searcher = None
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._current()
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
                self._codes = None  # `data_version` only counts other connections' writes
                self._searcher = None
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StoreError(f"cannot write the index at {self.path}: {exc}") from None
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._current().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the index at {self.path}: {exc}") from None

    def fingerprints(self) -> dict[str, str]:
        return dict(self._query("SELECT source, fingerprint FROM sources"))

    def vectors_of(self, source: str) -> set[str]:
        rows = self._query(
            "SELECT id FROM chunks WHERE source = ? AND vector IS NOT NULL", [source]
        )
        return {row[0] for row in rows}

    def replace_source(
        self,
        source: str,
        fingerprint: str,
        chunks: Sequence[Chunk],
        embedded: dict[str, list[float]],
    ) -> int:
        blobs = {cid: vectors.blob(vector) for cid, vector in embedded.items()}
        codes = {cid: vectors.code(blob) for cid, blob in blobs.items()}
        self._check_dimensions(blobs)
        with self._transaction() as db:
            kept = {
                row[0] for row in db.execute("SELECT id FROM chunks WHERE source = ?", [source])
            }
            wanted = {chunk.id for chunk in chunks}
            db.executemany("DELETE FROM chunks WHERE id = ?", [(cid,) for cid in kept - wanted])
            new = [c for c in chunks if c.id not in kept]
            rows = [(c, blobs.get(c.id), codes.get(c.id)) for c in new]
            db.executemany(
                "INSERT INTO chunks(id, source, idx, start, end_, heading, text, vector, code) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (c.id, source, c.index, c.start, c.end, c.heading, c.text, blob, code)
                    for c, blob, code in rows
                ],
            )
            db.executemany(
                "UPDATE chunks SET idx = ?, start = ?, end_ = ? WHERE id = ?",
                [(c.index, c.start, c.end, c.id) for c in chunks if c.id in kept],
            )
            db.executemany(
                "UPDATE chunks SET vector = ?, code = ? WHERE id = ?",
                [(blob, codes[cid], cid) for cid, blob in blobs.items() if cid in kept],
            )
            db.execute(
                "INSERT INTO sources VALUES (?, ?) ON CONFLICT(source) DO UPDATE SET "
                "fingerprint = excluded.fingerprint",
                [source, fingerprint],
            )
        self._replay_words(batched=True)
        return len(new)

    def _check_dimensions(self, blobs: dict[str, bytes]) -> None:
        if not blobs:  # `dimensions()` reads the whole table of an index without vectors
            return
        sizes = {len(blob) // 4 for blob in blobs.values()}
        have = self.dimensions()
        if len(sizes) > 1 or (have is not None and sizes and sizes != {have}):
            raise StoreError(
                f"the embedding model gives vectors of {', '.join(map(str, sorted(sizes)))} "
                f"dimensions but the index holds {have}: the model changed, run `ingest --rebuild`"
            )

    def delete_source(self, source: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM chunks WHERE source = ?", [source])
            db.execute("DELETE FROM sources WHERE source = ?", [source])
        self._replay_words(batched=True)

    def keyword_search(self, query: str, k: int) -> list[Hit]:
        terms = search_terms(query)
        if not terms:
            return []
        try:
            self._replay_words()
        except StoreError as exc:  # a read-only index, say: its words as they are
            logger.warning("searching the words index as it is: %s", exc)
        with self._lock:
            searcher = self._words_searcher()
            # Terms are words (`\w+`), no query syntax; the lenient parser never raises anyway.
            parsed, _ = self._words.parse_query_lenient(" ".join(terms), words.FIELDS)
            found = searcher.search(parsed, k, count=False).hits  # no count: top-k skips
            rowids = searcher.fast_field_values("rowid", [address for _, address in found])
        scores = {
            int(rowid): float(score)
            for rowid, (score, _) in zip(rowids, found, strict=True)
            if rowid is not None
        }
        return self._hits(scores)

    def _words_searcher(self) -> tantivy.Searcher:
        """A searcher of the words index, renewed after any process wrote to the index."""
        version = int(self._query("PRAGMA data_version")[0][0])
        if self._searcher is None or self._searcher[0] != version:
            self._words.reload()
            self._searcher = (version, self._words.searcher())
        return self._searcher[1]

    def _replay_words(self, *, batched: bool = False) -> None:
        """Apply the logged chunk changes to the words index (see `words`).

        `batched`: only once `REPLAY_CHUNKS` changes or `REPLAY_SECONDS` have gathered.
        """
        if batched and time.monotonic() - self._replayed < words.REPLAY_SECONDS:
            if int(self._query("SELECT count(*) FROM words_log")[0][0]) < words.REPLAY_CHUNKS:
                return
        elif not self._query("SELECT 1 FROM words_log LIMIT 1"):
            return
        with self._transaction() as db:
            try:
                words.replay(self._words, db)
            except ValueError as exc:
                folder = words.folder_of(self._target)
                raise StoreError(f"cannot write the words index at {folder}: {exc}") from None
        self._replayed = time.monotonic()

    def vector_search(self, vector: Sequence[float], k: int) -> list[Hit]:
        rowids, codes = self._binary_codes()
        if not len(rowids):
            return []
        query = np.asarray(vector, dtype=np.float32)
        have = self.dimensions()
        if have is not None and query.size != have:
            raise StoreError(
                f"the question's embedding has {query.size} dimensions but the index holds "
                f"{have}: the embedding model changed, run `ingest --rebuild`"
            )
        candidates = vectors.candidates(rowids, codes, query, k)
        rows = self._query(
            f"SELECT rowid, vector FROM chunks WHERE rowid IN ({','.join('?' * len(candidates))})",  # noqa: S608
            candidates,
        )
        if not rows:
            return []
        return self._hits(vectors.top(rows, query, k))

    def _hits(self, scores: dict[int, float]) -> list[Hit]:
        """The chunks of these rowids, in the order given, with their scores."""
        if not scores:
            return []
        found = {
            row[0]: _chunk(row[1:])
            for row in self._query(
                f"SELECT c.rowid, {_COLUMNS} FROM chunks c "  # noqa: S608
                f"WHERE c.rowid IN ({','.join('?' * len(scores))})",
                list(scores),
            )
        }
        return [Hit(chunk=found[r], score=s) for r, s in scores.items() if r in found]

    def _binary_codes(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        """Every vector's binary code, reloaded after any process wrote to the index."""
        with self._lock:
            version = int(self._query("PRAGMA data_version")[0][0])
            if self._codes is None or self._codes[0] != version:
                try:
                    self._codes = (version, *vectors.load_codes(self._current()))
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot read the index at {self.path}: {exc}") from None
            return self._codes[1], self._codes[2]

    def dimensions(self) -> int | None:
        rows = self._query("SELECT length(vector) FROM chunks WHERE vector IS NOT NULL LIMIT 1")
        return rows[0][0] // 4 if rows else None

    def get(self, chunk_id: str) -> Chunk | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM chunks c WHERE c.id = ?", [chunk_id])  # noqa: S608
        return _chunk(rows[0]) if rows else None

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM chunks")[0][0])

    @contextmanager
    def rebuilding(self) -> Iterator[SQLiteStore]:
        """Build into a new file, then point the link at it; the old file is removed. What a
        rebuild stopped part way left is removed when the next one starts."""
        fresh_file = files.new_file(self.path)
        staging = self.path.with_name(f".{self.path.name}.rebuild")
        left = files.link_of(staging)  # a rebuild stopped part way (a kill, a crash) left these
        if left is not None and staging.with_name(left.name) != self.path.resolve():
            files.discard(staging, staging.with_name(left.name))
        try:
            staging.unlink(missing_ok=True)
            files.link(staging, fresh_file)
            fresh = SQLiteStore(staging)
        except (OSError, StoreError) as exc:
            files.discard(staging, fresh_file)
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot start a new index next to {self.path}: {exc}") from None
        try:
            yield fresh
            fresh._replay_words()  # complete before it is swapped in
        except BaseException:
            fresh._close_database()
            files.discard(staging, fresh_file)
            raise
        fresh.close()
        old = self.path.resolve()
        staging.replace(self.path)  # atomic: readers see the old index or the new one
        with self._lock:
            self._current()
        if legacy.unlinked(old, self.path):  # the link replaced the file itself
            files.remove(old, suffixes=files.DATABASE_FILES[1:])
        elif old != fresh_file:
            files.remove(old)

    def close(self) -> None:
        """Replay what is left into the words index (or leave it to the next process), close."""
        try:
            self._replay_words()
        except StoreError as exc:
            logger.warning("the next process will bring the words index up to date: %s", exc)
        self._close_database()

    def _close_database(self) -> None:
        with self._lock:
            self._db.close()


def _chunk(row: Sequence[Any]) -> Chunk:
    cid, source, index, start, end, heading, text = row[:7]
    return Chunk(
        id=cid, source=source, index=index, start=start, end=end, heading=heading, text=text
    )


def open_store(settings: Settings, name: str | None = None) -> SQLiteStore:
    """The index the settings name; with `name`, a separate one (build/index/<name>.sqlite3)."""
    if name is not None:
        return SQLiteStore(Path("build") / "index" / f"{name}.sqlite3")
    return SQLiteStore(load(SqliteSettings, settings.secrets_dir).index_path)
