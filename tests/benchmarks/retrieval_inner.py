"""Hybrid retrieval against its raw components, inside a generated project.

Run by bench.py as ``python retrieval_inner.py PACKAGE STORE CHUNKS CACHE_DIR`` (STORE: sqlite or
pgvector; pgvector reads PGVECTOR_DSN). The index holds CHUNKS synthetic chunks of about 150
words with 768-dimension vectors (nomic-embed-text v1.5's size, the default embedding model),
written through the store's own `replace_source`, 100 chunks per file; a SQLite index is kept in
CACHE_DIR for the next run while the store's code and the corpus are unchanged.

Timed, per question, in rotating order: the app's hybrid retrieval (`Retriever.retrieve`: the
full-text query, the vector search and reciprocal rank fusion, with the question's vector given:
the embedding model is timed with generation), the full-text query alone (SQLite: the words
index's own Tantivy search; pgvector: the store's SQL, straight to the database) and the vector
search alone (SQLite: exact cosine top-k by numpy over the whole matrix in memory; pgvector: its
SQL). Recall@20 compares the store's vector search with the exact top 20.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import Corpus
from measure import emit, peak_rss_mb, summary, timed

DIMS = 768
PER_FILE = 100
QUESTIONS = 100
PASSES = 2
TOP = 20


class Embedder:
    """Stands in for the gateway: the question's vector, known in advance."""

    def __init__(self, vectors: dict[str, Any], min_similarity: float) -> None:
        self.vectors = vectors
        self.embedding = type("Info", (), {"min_similarity": min_similarity})()

    def embed(self, texts: list[str], *, query: bool = False) -> list[list[float]]:  # noqa: ARG002
        return [self.vectors[text] for text in texts]


def fill(store: Any, base: Any, corpus: Corpus, chunks: int) -> float:  # noqa: ANN401
    """Write `chunks` chunks through the store; returns the seconds it took."""
    started = time.perf_counter()
    for start in range(0, chunks, PER_FILE):
        count = min(PER_FILE, chunks - start)
        texts = corpus.texts(start, count)
        vectors = corpus.vectors(start, count)
        items = [
            base.Chunk(
                id=f"{start + i:032x}",
                source=f"docs/file{start // PER_FILE:06d}.md",
                index=i,
                start=0,
                end=len(text),
                heading=f"File {start // PER_FILE} > Part {i}",
                text=text,
            )
            for i, text in enumerate(texts)
        ]
        store.replace_source(
            items[0].source,
            "bench",
            items,
            {c.id: v.tolist() for c, v in zip(items, vectors, strict=True)},
        )
    return time.perf_counter() - started


def cache_key(package: str) -> str:
    """Changes when the store's code or the corpus changes."""
    sqlite_module = importlib.import_module(f"{package}.store.sqlite")
    digest = hashlib.sha256()
    for module in sorted(Path(str(sqlite_module.__file__)).parent.glob("*.py")):
        digest.update(module.read_bytes())
    digest.update((Path(__file__).parent / "corpus.py").read_bytes())
    return digest.hexdigest()[:10]


def sqlite_index(package: str, chunks: int, cache: Path, corpus: Corpus) -> tuple[Any, Path, float]:
    """The SQLite store with `chunks` chunks, the database file, and build seconds (0: cached)."""
    sqlite_module = importlib.import_module(f"{package}.store.sqlite")
    base = importlib.import_module(f"{package}.store.base")
    link = cache / f"sqlite-{chunks}-{DIMS}-{cache_key(package)}.sqlite3"
    build_seconds = 0.0
    if not (link.exists() and link.with_suffix(".done").exists()):
        for old in cache.glob(f"sqlite-{chunks}-{DIMS}-*"):
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)  # the words index of an older build
            else:
                old.unlink()
        cache.mkdir(parents=True, exist_ok=True)
        store = sqlite_module.SQLiteStore(link)
        build_seconds = fill(store, base, corpus, chunks)
        store.close()
        link.with_suffix(".done").touch()
    return sqlite_module.SQLiteStore(link), link.resolve(), build_seconds


def main() -> None:  # noqa: C901, PLR0915 - one measurement, read top to bottom
    package, kind, chunks, cache = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    config = importlib.import_module(f"{package}.config")
    retrieval = importlib.import_module(f"{package}.retrieval")
    base = importlib.import_module(f"{package}.store.base")
    corpus = Corpus(dims=DIMS)
    settings = config.RetrievalSettings()
    questions = corpus.questions(chunks, QUESTIONS)
    matches = [" ".join(base.search_terms(q)) for q, _ in questions]

    if kind == "sqlite":
        store, database, build_seconds = sqlite_index(package, chunks, cache, corpus)
        raw = sqlite3.connect(database)
        rows = raw.execute("SELECT rowid, vector FROM chunks WHERE vector IS NOT NULL").fetchall()
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        matrix = np.frombuffer(b"".join(row[1] for row in rows), np.float32).reshape(len(rows), -1)
        rowid_of = dict(raw.execute("SELECT id, rowid FROM chunks").fetchall())
        del rows

        words = store._words  # the words index's Tantivy index, searched directly
        searcher = words.searcher()

        def keyword_alone(i: int) -> object:
            query, _ = words.parse_query_lenient(matches[i], ["heading", "text"])
            hits = searcher.search(query, settings.candidates, count=False).hits
            return searcher.fast_field_values("rowid", [address for _, address in hits])

        def exact(vector: Any) -> list[Any]:  # noqa: ANN401
            scores = matrix @ vector
            top = np.argpartition(-scores, TOP - 1)[:TOP]
            return [int(r) for r in ids[top[np.argsort(-scores[top])]]]

        def vector_alone(i: int) -> object:
            return exact(questions[i][1])

        def app_ids(hits: list[Any]) -> list[Any]:
            return [rowid_of[hit.chunk.id] for hit in hits]

    else:
        pg = importlib.import_module(f"{package}.store.pgvector")
        import psycopg  # noqa: PLC0415 - the pgvector project's dependency

        dsn = pg.load(pg.PgvectorSettings).dsn.get_secret_value()
        prefix = f"bench{chunks}"
        store = pg.PgvectorStore(dsn, prefix)
        build_seconds = 0.0
        if store.count() != chunks:
            with store.rebuilding() as fresh:
                build_seconds = fill(fresh, base, corpus, chunks)
        connection = psycopg.connect(dsn, autocommit=True)
        keywords_sql = store._q(pg._KEYWORDS)
        vectors_sql = store._q(pg._VECTORS)
        terms = [
            " | ".join(f"'{w.replace(chr(39), '')}'" for w in base.search_terms(q))
            for q, _ in questions
        ]
        literals = [pg._literal(v.tolist()) for _, v in questions]

        def keyword_alone(i: int) -> object:
            return connection.execute(keywords_sql, [terms[i], settings.candidates]).fetchall()

        def vector_alone(i: int) -> object:
            return connection.execute(
                vectors_sql, [literals[i], literals[i], settings.candidates]
            ).fetchall()

        def exact(vector: Any) -> list[Any]:  # noqa: ANN401
            literal = pg._literal(vector.tolist())
            with connection.transaction():
                connection.execute("SET LOCAL enable_indexscan = off")
                rows = connection.execute(
                    vectors_sql.as_string(connection).replace("LIMIT %s", f"LIMIT {TOP}"),
                    [literal, literal],
                ).fetchall()
            return [row[0] for row in rows]

        def app_ids(hits: list[Any]) -> list[Any]:
            return [hit.chunk.id for hit in hits]

    embedder = Embedder({q: v.tolist() for q, v in questions}, min_similarity=0.0)
    retriever = retrieval.Retriever(store, embedder, settings)

    def hybrid(i: int) -> object:
        return retriever.retrieve(questions[i][0])

    steps = {"hybrid": hybrid, "keyword": keyword_alone, "vector": vector_alone}
    for i in range(min(10, QUESTIONS)):  # warm the caches (and load the vectors)
        for step in steps.values():
            step(i)
    samples: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for turn in range(PASSES * QUESTIONS):
        i = turn % QUESTIONS
        for name in order[turn % 3 :] + order[: turn % 3]:
            samples[name].append(timed(functools.partial(steps[name], i)))
    recall = []
    for _, vector in questions[:20]:
        truth = set(exact(vector))
        found = set(app_ids(store.vector_search(vector.tolist(), TOP)))
        recall.append(len(truth & found) / TOP)
    store.close()
    emit(
        {
            "store": kind,
            "chunks": chunks,
            "dims": DIMS,
            "build_s": build_seconds,
            "recall_at_20": sum(recall) / len(recall),
            "peak_rss_mb": peak_rss_mb(),
            **{name: summary(values) for name, values in samples.items()},
        }
    )


if __name__ == "__main__":
    main()
