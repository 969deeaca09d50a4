"""Feedback on answers, stored durably and turned into eval cases.

Beyond thumbs up or down: a corrected answer, and implicit signals (the answer was copied, the
question retried), each linked to the trace id of the answer. Records live in a SQLite file
next to the index, in WAL mode, so the API can write while an export reads.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, Field

from .evals.cases import CasesFile, EvalCase

if TYPE_CHECKING:
    from pathlib import Path

Rating = Literal["up", "down"]
Signal = Literal["copied", "retried", "shared", "abandoned"]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT NOT NULL,
    question TEXT NOT NULL DEFAULT '',
    answer TEXT NOT NULL DEFAULT '',
    rating TEXT,
    correction TEXT,
    signals TEXT NOT NULL DEFAULT '[]',
    sources TEXT NOT NULL DEFAULT '[]',
    comment TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_trace ON feedback (trace_id);
"""


class FeedbackIn(BaseModel):
    """Feedback on one answer, as the API and the CLI accept it."""

    trace_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    rating: Rating | None = None
    correction: Annotated[str | None, Field(max_length=4000)] = None
    signals: list[Signal] = Field(default_factory=list)
    question: Annotated[str, Field(max_length=2000)] = ""
    answer: Annotated[str, Field(max_length=8000)] = ""
    sources: list[str] = Field(default_factory=list)
    comment: Annotated[str | None, Field(max_length=2000)] = None


class FeedbackRecord(FeedbackIn):
    """Stored feedback, with its id and time."""

    id: int
    created_at: datetime


class FeedbackStore:
    """Feedback records in SQLite (WAL)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, feedback: FeedbackIn) -> FeedbackRecord:
        """Store one record and return it as stored."""
        created = datetime.now(UTC)
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO feedback (trace_id, question, answer, rating, correction, signals,"
                " sources, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    feedback.trace_id,
                    feedback.question,
                    feedback.answer,
                    feedback.rating,
                    feedback.correction,
                    json.dumps(feedback.signals),
                    json.dumps(feedback.sources),
                    feedback.comment,
                    created.isoformat(),
                ),
            )
        return FeedbackRecord(
            id=int(cursor.lastrowid or 0), created_at=created, **feedback.model_dump()
        )

    def records(self) -> list[FeedbackRecord]:
        """Every record, oldest first."""
        rows = self._db.execute(
            "SELECT id, trace_id, question, answer, rating, correction, signals, sources,"
            " comment, created_at FROM feedback ORDER BY id"
        ).fetchall()
        return [
            FeedbackRecord(
                id=row[0],
                trace_id=row[1],
                question=row[2],
                answer=row[3],
                rating=row[4],
                correction=row[5],
                signals=json.loads(row[6]),
                sources=json.loads(row[7]),
                comment=row[8],
                created_at=datetime.fromisoformat(row[9]),
            )
            for row in rows
        ]


def to_case(record: FeedbackRecord) -> EvalCase | None:
    """An eval case from feedback that says what a good answer is, else None.

    A correction is the expected answer; a thumbs-up keeps the answer as it was. A thumbs-down
    without a correction says only that something was wrong, which no scorer can check.
    """
    if not record.question:
        return None
    if record.correction:
        reference = record.correction
    elif record.rating == "up" and record.answer:
        reference = record.answer
    else:
        return None
    return EvalCase(
        id=f"feedback-{record.id}",
        question=record.question,
        expected_facts=[reference],
        expected_sources=record.sources,
        reference=reference,
        label="answerable",
        trace_id=record.trace_id,
    )


def export_cases(records: list[FeedbackRecord]) -> tuple[CasesFile, int]:
    """The records that make cases, in the cases format; and how many could not."""
    cases = [case for record in records if (case := to_case(record)) is not None]
    return CasesFile(cases=cases), len(records) - len(cases)
