"""The words index: Tantivy beside the database file, kept in step through a change log.

Words are ranked by Tantivy (BM25, English stemming, accents folded), a full-text engine whose
top-k search skips the chunks that cannot reach the top (block-max WAND): at 100k chunks a
question of common words costs a few milliseconds instead of a BM25 score for every chunk that
has one of its words. The words index is derived from the chunks table and lives in a folder
beside the database file (`index.sqlite3.<ms>.words`). Every change of a chunk is logged in
SQLite (`words_log`, by triggers) in the same transaction, and replayed into the words index in
batches (a commit there costs tens of milliseconds): by the writer every few thousand chunks or
seconds and when it closes the index, and before a search by whichever process searches.
Replaying is idempotent, so a change a crash left behind is replayed by the next process, and a
missing or unreadable words folder is rebuilt from the chunks.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import tantivy

if TYPE_CHECKING:
    import sqlite3

FIELDS = ["heading", "text"]
_REPLAY_BATCH = 10_000
# A writer replays its changes into the words index after this many chunks or seconds.
REPLAY_CHUNKS = 5_000
REPLAY_SECONDS = 5.0
# Tantivy's indexing memory budget (its minimum); one thread leaves the other cores to ingest.
_WRITER_HEAP = 15_000_000


def folder_of(database: Path) -> Path:
    return Path(f"{database}.words")


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("rowid", indexed=True, fast=True)
    for field in FIELDS:
        builder.add_text_field(field, tokenizer_name="words")
    return builder.build()


def _existing(folder: Path) -> tantivy.Index | None:
    try:
        return tantivy.Index.open(str(folder)) if tantivy.Index.exists(str(folder)) else None
    except ValueError:  # unreadable: made anew
        return None


def open_words(db: sqlite3.Connection, folder: Path) -> tantivy.Index:
    """The words index; a missing or unreadable one is made anew and every chunk logged for it."""
    words = _existing(folder)
    if words is None:
        db.execute("BEGIN IMMEDIATE")  # one process makes it
        try:
            words = _existing(folder)  # made meanwhile by another
            if words is None:
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                words = tantivy.Index(_schema(), path=str(folder), reuse=False)
                db.execute("INSERT INTO words_log(chunk) SELECT rowid FROM chunks")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    analyzer = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )
    words.register_tokenizer("words", analyzer)
    return words


def replay(words: tantivy.Index, db: sqlite3.Connection) -> None:
    """Apply the logged chunk changes to the words index, within the caller's transaction;
    replaying twice changes nothing. Raises ValueError when the words index cannot be written."""
    last = db.execute("SELECT max(seq) FROM words_log").fetchone()[0]
    if last is None:
        return
    changed = [
        row[0] for row in db.execute("SELECT DISTINCT chunk FROM words_log WHERE seq <= ?", [last])
    ]
    writer = words.writer(heap_size=_WRITER_HEAP, num_threads=1)
    try:
        for start in range(0, len(changed), _REPLAY_BATCH):
            batch = changed[start : start + _REPLAY_BATCH]
            for rowid in batch:
                writer.delete_documents_by_term("rowid", rowid)
            marks = ",".join("?" * len(batch))
            for rowid, heading, text in db.execute(
                f"SELECT rowid, heading, text FROM chunks WHERE rowid IN ({marks})",  # noqa: S608
                batch,
            ):
                writer.add_document(tantivy.Document(rowid=rowid, heading=heading, text=text))
        writer.commit()
        writer.wait_merging_threads()  # merges the small segments of batches
    finally:
        del writer  # releases the words index's write lock now
    db.execute("DELETE FROM words_log WHERE seq <= ?", [last])
