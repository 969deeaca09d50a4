"""Postgres index: full-text search for words, pgvector with an HNSW index for vectors.

For teams that already run Postgres, or whose corpus outgrows an in-memory matrix. Same
behaviour as the SQLite store; only the lexical scores differ (``ts_rank_cd``, not BM25).
The vector column gets its dimension (and the HNSW index) from the first embedding written,
since the embedding model, not this code, decides it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from .base import Hit, StoredChunk, StoreError, UpsertResult
from .query import query_terms

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..chunking import Chunk  # noqa: TID252 - see store/__init__.py
    from ..settings import Settings  # noqa: TID252

SCHEMA_VERSION = 1
# pgvector's HNSW index covers up to 2000 dimensions of type vector; beyond, search is exact.
_HNSW_MAX_DIMENSIONS = 2000
# The text search configuration: stemming and stop words for English.
_TEXT_CONFIG = "english"
_COLUMNS = sql.SQL(
    "c.id, c.source, c.idx, c.start_char, c.end_char, c.heading, c.body, c.hash, c.tokens"
)


class PgVectorStore:
    """The server store: Postgres with the ``vector`` extension."""

    backend = "pgvector"

    def __init__(
        self, dsn: str, *, prefix: str = "rag", pool_size: int = 4, connect_timeout: float = 10.0
    ) -> None:
        self._prefix = prefix
        self._t = {
            name: sql.Identifier(f"{prefix}_{name}") for name in ("meta", "sources", "chunks")
        }
        _probe(dsn, connect_timeout)
        try:
            self._pool = ConnectionPool(
                dsn, min_size=1, max_size=pool_size, open=True, timeout=connect_timeout
            )
            self._pool.wait(timeout=connect_timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            raise StoreError(
                f"cannot connect to Postgres ({type(exc).__name__}); check PGVECTOR_DSN and "
                "that the server is running"
            ) from None
        try:
            self._create_schema()
        except psycopg.Error as exc:
            self._pool.close()
            raise StoreError(f"cannot prepare the pgvector schema: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> PgVectorStore:
        if settings.pgvector_dsn is None:
            raise StoreError("VECTOR_STORE=pgvector needs PGVECTOR_DSN (a Postgres URL)")
        return cls(settings.pgvector_dsn.get_secret_value(), prefix=settings.pgvector_table_prefix)

    def _q(self, template: str) -> sql.Composed:
        """A statement with the table names (``{chunks}``...) and ``{columns}`` filled in."""
        return sql.SQL(template).format(
            columns=_COLUMNS, config=sql.Literal(_TEXT_CONFIG), **self._t
        )

    def _create_schema(self) -> None:
        with self._pool.connection() as conn:
            # Serialise concurrent first starts (API workers) on an advisory lock.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._prefix,))
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(
                self._q(
                    "CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value text NOT NULL)"
                )
            )
            conn.execute(
                self._q(
                    "CREATE TABLE IF NOT EXISTS {sources} (source text PRIMARY KEY, "
                    "hash text NOT NULL, chunks integer NOT NULL, "
                    "updated_at timestamptz NOT NULL DEFAULT now())"
                )
            )
            conn.execute(
                self._q(
                    "CREATE TABLE IF NOT EXISTS {chunks} ("
                    " id text PRIMARY KEY,"
                    " source text NOT NULL REFERENCES {sources}(source) ON DELETE CASCADE,"
                    " idx integer NOT NULL, start_char integer NOT NULL,"
                    " end_char integer NOT NULL, heading text NOT NULL, body text NOT NULL,"
                    " hash text NOT NULL, tokens integer NOT NULL, embedding vector,"
                    " tsv tsvector GENERATED ALWAYS AS ("
                    "  setweight(to_tsvector({config}::regconfig, heading), 'A') ||"
                    "  setweight(to_tsvector({config}::regconfig, body), 'B')"
                    " ) STORED)"
                )
            )
            conn.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {chunks} (source)").format(
                    sql.Identifier(f"{self._prefix}_chunks_source"), **self._t
                )
            )
            conn.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {chunks} USING gin (tsv)").format(
                    sql.Identifier(f"{self._prefix}_chunks_tsv"), **self._t
                )
            )
            conn.execute(
                self._q(
                    "INSERT INTO {meta} (key, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO NOTHING"
                ),
                (str(SCHEMA_VERSION),),
            )
            row = conn.execute(
                self._q("SELECT value FROM {meta} WHERE key = 'schema_version'")
            ).fetchone()
        if row is not None and int(row[0]) != SCHEMA_VERSION:
            raise StoreError(
                f"tables {self._prefix}_* have schema version {row[0]}, this app needs "
                f"{SCHEMA_VERSION}: drop them (or change PGVECTOR_TABLE_PREFIX) and ingest again"
            )

    # -- writing ---------------------------------------------------------------------------

    def _dimensions(self, conn: psycopg.Connection[Any]) -> int | None:
        row = conn.execute(self._q("SELECT value FROM {meta} WHERE key = 'dimensions'")).fetchone()
        return None if row is None else int(row[0])

    def _ensure_dimensions(self, conn: psycopg.Connection[Any], dims: int) -> None:
        """Fix the column's dimension on first use and build the HNSW index for it."""
        current = self._dimensions(conn)
        if current == dims:
            return
        if current is not None:
            raise StoreError(
                f"embedding has {dims} dimensions but the index holds {current}: "
                "the embedding model changed, run ingest with --rebuild"
            )
        conn.execute(
            sql.SQL("ALTER TABLE {chunks} ALTER COLUMN embedding TYPE {type}").format(
                type=sql.SQL(f"vector({int(dims)})"), **self._t
            )
        )
        if dims <= _HNSW_MAX_DIMENSIONS:
            conn.execute(
                sql.SQL(
                    "CREATE INDEX IF NOT EXISTS {name} ON {chunks} "
                    "USING hnsw (embedding vector_cosine_ops)"
                ).format(name=sql.Identifier(f"{self._prefix}_chunks_embedding"), **self._t)
            )
        conn.execute(
            self._q("INSERT INTO {meta} (key, value) VALUES ('dimensions', %s)"), (str(dims),)
        )

    def upsert(
        self,
        source: str,
        source_hash: str,
        chunks: Sequence[Chunk],
        vectors: Mapping[str, Sequence[float]] | None = None,
    ) -> UpsertResult:
        vectors = vectors or {}
        literals = {cid: _vector_literal(vector) for cid, vector in vectors.items()}
        dims = {literal.count(",") + 1 for literal in literals.values()}
        if len(dims) > 1:
            raise StoreError(f"embeddings of different sizes in one batch: {sorted(dims)}")
        wanted = {chunk.id for chunk in chunks}
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._prefix,))
            if dims:
                self._ensure_dimensions(conn, dims.pop())
            conn.execute(
                self._q(
                    "INSERT INTO {sources} (source, hash, chunks) VALUES (%s, %s, %s) "
                    "ON CONFLICT (source) DO UPDATE SET hash = excluded.hash, "
                    "chunks = excluded.chunks, updated_at = now()"
                ),
                (source, source_hash, len(chunks)),
            )
            existing = {
                row[0]: (row[1], row[2], row[3])
                for row in conn.execute(
                    self._q("SELECT id, idx, start_char, end_char FROM {chunks} WHERE source = %s"),
                    (source,),
                )
            }
            gone = [cid for cid in existing if cid not in wanted]
            new = [chunk for chunk in chunks if chunk.id not in existing]
            moved = [
                (chunk.index, chunk.start, chunk.end, chunk.id)
                for chunk in chunks
                if chunk.id in existing
                and existing[chunk.id] != (chunk.index, chunk.start, chunk.end)
            ]
            with conn.cursor() as cur:
                if gone:
                    cur.execute(self._q("DELETE FROM {chunks} WHERE id = ANY(%s)"), (gone,))
                cur.executemany(
                    self._q(
                        "UPDATE {chunks} SET idx = %s, start_char = %s, end_char = %s WHERE id = %s"
                    ),
                    moved,
                )
                cur.executemany(
                    self._q(
                        "INSERT INTO {chunks} (id, source, idx, start_char, end_char, heading, "
                        "body, hash, tokens) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    ),
                    [
                        (c.id, source, c.index, c.start, c.end, c.heading, c.text, c.hash, c.tokens)
                        for c in new
                    ],
                )
                cur.executemany(
                    self._q("UPDATE {chunks} SET embedding = %s::vector WHERE id = %s"),
                    [(literal, cid) for cid, literal in literals.items() if cid in wanted],
                )
        return UpsertResult(
            added=len(new),
            unchanged=len(chunks) - len(new),
            removed=len(gone),
            embedded=len(literals),
        )

    def delete_source(self, source: str) -> int:
        with self._pool.connection() as conn, conn.transaction():
            cur = conn.execute(self._q("DELETE FROM {chunks} WHERE source = %s"), (source,))
            removed = cur.rowcount
            conn.execute(self._q("DELETE FROM {sources} WHERE source = %s"), (source,))
        return removed

    def clear(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._prefix,))
            conn.execute(self._q("TRUNCATE {chunks}, {sources}"))
            conn.execute(
                sql.SQL("DROP INDEX IF EXISTS {}").format(
                    sql.Identifier(f"{self._prefix}_chunks_embedding")
                )
            )
            conn.execute(self._q("ALTER TABLE {chunks} ALTER COLUMN embedding TYPE vector"))
            conn.execute(self._q("DELETE FROM {meta} WHERE key = 'dimensions'"))

    # -- reading ---------------------------------------------------------------------------

    def sources(self) -> dict[str, str]:
        with self._pool.connection() as conn:
            rows = conn.execute(self._q("SELECT source, hash FROM {sources}")).fetchall()
        return {row[0]: row[1] for row in rows}

    def chunk_state(self, source: str) -> dict[str, bool]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                self._q("SELECT id, embedding IS NOT NULL FROM {chunks} WHERE source = %s"),
                (source,),
            ).fetchall()
        return {row[0]: bool(row[1]) for row in rows}

    def count(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute(self._q("SELECT count(*) FROM {chunks}")).fetchone()
        return 0 if row is None else int(row[0])

    def has_vectors(self) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute(
                self._q("SELECT 1 FROM {chunks} WHERE embedding IS NOT NULL LIMIT 1")
            ).fetchone()
        return row is not None

    _COLUMNS = (
        "c.id, c.source, c.idx, c.start_char, c.end_char, c.heading, c.body, c.hash, c.tokens"
    )

    def get_chunk(self, chunk_id: str) -> StoredChunk | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                self._q("SELECT {columns} FROM {chunks} c WHERE c.id = %s"), (chunk_id,)
            ).fetchone()
        return None if row is None else _row_to_chunk(row)

    def lexical_search(self, query: str, k: int) -> list[Hit]:
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        # websearch_to_tsquery never raises on user syntax; the terms are plain words anyway.
        tsquery = " or ".join(terms)
        with self._pool.connection() as conn:
            rows = conn.execute(
                self._q(
                    "SELECT {columns}, ts_rank_cd(c.tsv, q) AS score "
                    "FROM {chunks} c, websearch_to_tsquery(%s::regconfig, %s) q "
                    "WHERE c.tsv @@ q ORDER BY score DESC, c.id LIMIT %s"
                ),
                (_TEXT_CONFIG, tsquery, k),
            ).fetchall()
        return [Hit(chunk=_row_to_chunk(row[:9]), score=float(row[9])) for row in rows]

    def vector_search(self, vector: Sequence[float], k: int) -> list[Hit]:
        if k <= 0:
            return []
        literal = _vector_literal(vector)
        with self._pool.connection() as conn, conn.transaction():
            dims = self._dimensions(conn)
            if dims is None:
                return []
            if literal.count(",") + 1 != dims:
                raise StoreError(
                    f"query embedding has {literal.count(',') + 1} dimensions but the index "
                    f"holds {dims}: the embedding model changed, run ingest with --rebuild"
                )
            # HNSW returns at most ef_search rows; make sure that covers k.
            conn.execute(
                sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(max(40, 2 * k)))
            )
            rows = conn.execute(
                self._q(
                    "SELECT {columns}, 1 - (c.embedding <=> %s::vector) AS score "
                    "FROM {chunks} c WHERE c.embedding IS NOT NULL "
                    "ORDER BY c.embedding <=> %s::vector LIMIT %s"
                ),
                (literal, literal, k),
            ).fetchall()
        return [Hit(chunk=_row_to_chunk(row[:9]), score=float(row[9])) for row in rows]

    def close(self) -> None:
        self._pool.close()


def _probe(dsn: str, timeout: float) -> None:
    """Fail fast, with the server's reason, when Postgres cannot be reached at all.

    The pool alone would retry silently until its timeout. The DSN may hold a password: it
    is scrubbed from the message, and the DSN itself is never shown.
    """
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise StoreError("PGVECTOR_DSN is not a valid Postgres connection string") from None
    password = str(params.get("password") or "")
    try:
        psycopg.connect(dsn, connect_timeout=max(1, int(timeout))).close()
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        if password:
            reason = reason.replace(password, "***")
        raise StoreError(
            f"cannot connect to Postgres: {reason[:300]}; check PGVECTOR_DSN and that the "
            "server is running"
        ) from None


def _vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form; avoids a client-side adapter dependency."""
    values = [float(x) for x in vector]
    if not values:
        raise StoreError("a vector must be a non-empty list of numbers")
    return "[" + ",".join(repr(v) for v in values) + "]"


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
