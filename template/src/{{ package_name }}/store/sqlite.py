"""Embedded index in one SQLite file: FTS5 BM25 for words, numpy for vectors.

It needs no server and no SQLite extension (many Pythons cannot load one, so ``sqlite-vec`` is
out): vectors are float32 BLOBs, searched by brute-force cosine over a matrix cached in memory.
At 100k chunks of 1024 dimensions that is a 400 MB matrix and a few tens of milliseconds per
query; past that, use the pgvector store. The cache is rebuilt when the index's generation
counter (bumped by every write, from any process) changes.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .base import Hit, StoredChunk, StoreError, UpsertResult
from .query import fts5_match, query_terms

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

    from ..chunking import Chunk  # noqa: TID252 - see store/__init__.py
    from ..settings import Settings  # noqa: TID252

SCHEMA_VERSION = 1
_CHUNK_COLUMNS = "c.id, c.source, c.idx, c.start, c.end_, c.heading, c.text, c.hash, c.tokens"
# FTS5 sorts fastest by its own rank column (configured as weighted BM25), so rank in a
# subquery and join the chunk rows for the k winners only.
_RANKED = (
    f"SELECT {_CHUNK_COLUMNS}, r.rank FROM ("  # noqa: S608 - constants only
    "  SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?"
    ") r JOIN chunks c ON c.rowid = r.rowid ORDER BY r.rank"
)
_UNRANKED = (
    f"SELECT {_CHUNK_COLUMNS}, 0.0 FROM ("  # noqa: S608 - constants only
    "  SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?"
    ") r JOIN chunks c ON c.rowid = r.rowid"
)
# Below this many chunks, an OR query over all terms is fast enough to always be exact.
_EXACT_BELOW_ROWS = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL REFERENCES sources(source) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end_ INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    vector BLOB
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    heading, text, content='chunks', content_rowid='rowid',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, heading, text) VALUES (new.rowid, new.heading, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, heading, text)
    VALUES ('delete', old.rowid, old.heading, old.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_au AFTER UPDATE OF heading, text ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, heading, text)
    VALUES ('delete', old.rowid, old.heading, old.text);
    INSERT INTO chunks_fts(rowid, heading, text) VALUES (new.rowid, new.heading, new.text);
END;
-- Heading matches count double: a question usually names the section it is about.
INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('rank', 'bm25(2.0, 1.0)');
INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0');
"""


class _VectorCache:
    """Unit-length vectors of the whole index, as one matrix, for one index generation."""

    def __init__(
        self, generation: int, rowids: npt.NDArray[np.int64], matrix: npt.NDArray[np.float32]
    ) -> None:
        self.generation = generation
        self.rowids = rowids
        self.matrix = matrix


class SQLiteStore:
    """The default store: one file, no server."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._cache: _VectorCache | None = None
        self._counted: tuple[int, int] | None = None
        try:
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(path), timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.OperationalError as exc:
            if "fts5" in str(exc).lower():
                raise StoreError(
                    "this Python's SQLite has no FTS5 full-text search; "
                    "use a Python built with FTS5 or VECTOR_STORE=pgvector"
                ) from exc
            raise StoreError(f"cannot open the SQLite index at {path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot create the SQLite index at {path}: {exc}") from exc
        version = int(self._meta("schema_version") or SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"the index at {path} has schema version {version}, this app needs "
                f"{SCHEMA_VERSION}: delete the file and run ingest again"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> SQLiteStore:
        return cls(settings.sqlite_path)

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
            )
            self._db.execute("COMMIT")

    def upsert(
        self,
        source: str,
        source_hash: str,
        chunks: Sequence[Chunk],
        vectors: Mapping[str, Sequence[float]] | None = None,
    ) -> UpsertResult:
        vectors = vectors or {}
        blobs = {cid: self._blob(vector) for cid, vector in vectors.items()}
        with self._transaction() as db:
            db.execute(
                "INSERT INTO sources(source, hash, chunks, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(source) DO UPDATE SET hash = excluded.hash, "
                "chunks = excluded.chunks, updated_at = excluded.updated_at",
                (source, source_hash, len(chunks), datetime.now(UTC).isoformat()),
            )
            existing = self._positions(db, source)
            wanted = {chunk.id for chunk in chunks}
            gone = [cid for cid in existing if cid not in wanted]
            db.executemany("DELETE FROM chunks WHERE id = ?", [(cid,) for cid in gone])
            new = [chunk for chunk in chunks if chunk.id not in existing]
            moved = [
                (chunk.index, chunk.start, chunk.end, chunk.id)
                for chunk in chunks
                if chunk.id in existing
                and existing[chunk.id] != (chunk.index, chunk.start, chunk.end)
            ]
            db.executemany("UPDATE chunks SET idx = ?, start = ?, end_ = ? WHERE id = ?", moved)
            db.executemany(
                "INSERT INTO chunks(id, source, idx, start, end_, heading, text, hash, tokens) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (c.id, source, c.index, c.start, c.end, c.heading, c.text, c.hash, c.tokens)
                    for c in new
                ],
            )
            db.executemany(
                "UPDATE chunks SET vector = ? WHERE id = ?",
                [(blob, cid) for cid, blob in blobs.items() if cid in wanted],
            )
        return UpsertResult(
            added=len(new),
            unchanged=len(chunks) - len(new),
            removed=len(gone),
            embedded=len(blobs),
        )

    @staticmethod
    def _positions(db: sqlite3.Connection, source: str) -> dict[str, tuple[int, int, int]]:
        return {
            row[0]: (row[1], row[2], row[3])
            for row in db.execute(
                "SELECT id, idx, start, end_ FROM chunks WHERE source = ?", (source,)
            )
        }

    def _blob(self, vector: Sequence[float]) -> bytes:
        array = np.asarray(vector, dtype=np.float32)
        if array.ndim != 1 or array.size == 0:
            raise StoreError("a vector must be a non-empty list of numbers")
        dims = self._meta("dimensions")
        if dims is None:
            with self._lock:
                self._db.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('dimensions', ?)",
                    (str(array.size),),
                )
        elif int(dims) != array.size:
            raise StoreError(
                f"embedding has {array.size} dimensions but the index holds {dims}: "
                "the embedding model changed, run ingest with --rebuild"
            )
        return array.tobytes()

    def delete_source(self, source: str) -> int:
        with self._transaction() as db:
            removed = db.execute("DELETE FROM chunks WHERE source = ?", (source,)).rowcount
            db.execute("DELETE FROM sources WHERE source = ?", (source,))
        return removed

    def clear(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM sources")
            db.execute("DELETE FROM meta WHERE key = 'dimensions'")
            db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")

    # -- reading ---------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def sources(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT source, hash FROM sources").fetchall())

    def chunk_state(self, source: str) -> dict[str, bool]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, vector IS NOT NULL FROM chunks WHERE source = ?", (source,)
            ).fetchall()
        return {row[0]: bool(row[1]) for row in rows}

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def has_vectors(self) -> bool:
        # Asked before every question: the cached matrix answers without a table scan.
        return bool(self._vectors().matrix.shape[0] > 0)

    def get_chunk(self, chunk_id: str) -> StoredChunk | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks c WHERE c.id = ?",  # noqa: S608
                (chunk_id,),
            ).fetchone()
        return None if row is None else _row_to_chunk(row)

    def lexical_search(self, query: str, k: int) -> list[Hit]:
        """BM25 over the question's terms, kept fast on large indexes.

        FTS5 scores every chunk that matches an OR query before it can sort, so a question
        whose words are all frequent (each in 10-50% of 100k chunks) would score tens of
        thousands of rows. On large indexes such questions are answered conjunctively first
        (chunks holding every term, the ones BM25 puts on top anyway), then by the selective
        terms alone; on small indexes the plain OR query is exact and fast.
        """
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        with self._lock:
            try:
                selective, frequent, common = self._classify(terms)
                rows: list[Any] = []
                if frequent and self._row_count() >= _EXACT_BELOW_ROWS:
                    self._extend(
                        rows,
                        _RANKED,
                        " AND ".join(fts5_match([t]) for t in frequent + selective),
                        k,
                    )
                    self._extend(rows, _RANKED, fts5_match(selective or frequent), k)
                elif selective or frequent:
                    self._extend(rows, _RANKED, fts5_match(selective + frequent), k)
                if common:
                    # Chunks matching only very common words: BM25 would score them ~0 anyway.
                    self._extend(rows, _UNRANKED, fts5_match(common), k)
            except sqlite3.OperationalError as exc:
                raise StoreError(f"full-text search failed: {exc}") from exc
        return [Hit(chunk=_row_to_chunk(row[:9]), score=0.0 - float(row[9])) for row in rows]

    def _extend(self, rows: list[Any], sql: str, match: str, k: int) -> None:
        """Append up to ``k - len(rows)`` new chunks found by ``sql``."""
        if len(rows) >= k or not match:
            return
        found = {row[0] for row in rows}
        more = self._db.execute(sql, (match, k + len(rows))).fetchall()
        rows += [row for row in more if row[0] not in found][: k - len(rows)]

    def _classify(self, terms: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
        """Split terms by how many chunks hold them: <10%, 10-50%, and half or more.

        FTS5 clamps the IDF of a term found in half of the rows or more to ~0, so such a term
        adds nothing to a score, yet scoring its huge match list is what makes a query slow.
        Counting a term's matches (up to half the rows) only walks its posting list. Terms
        that match nothing are dropped.
        """
        rows = self._row_count()
        selective: list[str] = []
        frequent: list[str] = []
        common: list[str] = []
        for term in terms:
            matches = self._db.execute(
                "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)",
                (fts5_match([term]), rows // 2 + 1),
            ).fetchone()[0]
            if matches == 0:
                continue
            if matches * 2 >= rows:
                common.append(term)
            elif matches * 10 >= rows:
                frequent.append(term)
            else:
                selective.append(term)
        return selective, frequent, common

    def _row_count(self) -> int:
        """Chunk count, cached per index generation (``count(*)`` walks a whole index)."""
        generation = int(self._meta("generation") or 0)
        if self._counted is None or self._counted[0] != generation:
            self._counted = (generation, self.count())
        return self._counted[1]

    def vector_search(self, vector: Sequence[float], k: int) -> list[Hit]:
        query = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        cache = self._vectors()
        if k <= 0 or norm == 0.0 or cache.matrix.shape[0] == 0:
            return []
        if query.size != cache.matrix.shape[1]:
            raise StoreError(
                f"query embedding has {query.size} dimensions but the index holds "
                f"{cache.matrix.shape[1]}: the embedding model changed, run ingest with --rebuild"
            )
        scores = cache.matrix @ (query / norm)
        k = min(k, scores.shape[0])
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        rowids = [int(r) for r in cache.rowids[top]]
        placeholders = ",".join("?" * len(rowids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT c.rowid, {_CHUNK_COLUMNS} FROM chunks c "  # noqa: S608
                f"WHERE c.rowid IN ({placeholders})",
                rowids,
            ).fetchall()
        by_rowid = {row[0]: _row_to_chunk(row[1:]) for row in rows}
        return [
            Hit(chunk=by_rowid[rowid], score=float(score))
            for rowid, score in zip(rowids, scores[top], strict=True)
            if rowid in by_rowid
        ]

    def _vectors(self) -> _VectorCache:
        """The cached matrix, reloaded when any process has written since it was built."""
        with self._lock:
            generation = int(self._meta("generation") or 0)
            if self._cache is not None and self._cache.generation == generation:
                return self._cache
            rows = self._db.execute(
                "SELECT rowid, vector FROM chunks WHERE vector IS NOT NULL ORDER BY rowid"
            ).fetchall()
            dims = int(self._meta("dimensions") or 0)
            matrix = np.empty((len(rows), dims), dtype=np.float32)
            for i, (_, blob) in enumerate(rows):
                matrix[i] = np.frombuffer(blob, dtype=np.float32)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            matrix /= norms
            rowids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            self._cache = _VectorCache(generation, rowids, matrix)
            return self._cache

    def close(self) -> None:
        with self._lock:
            self._cache = None
            self._db.close()


def _row_to_chunk(row: Sequence[Any]) -> StoredChunk:
    cid, source, index, start, end, heading, text, digest, tokens = row
    return StoredChunk(
        id=cid,
        source=source,
        index=index,
        start=start,
        end=end,
        heading=heading,
        text=text,
        hash=digest,
        tokens=tokens,
    )
