"""The question every real-model test asks the sample documents, and what a right answer is."""

from __future__ import annotations

from typing import Any

QUESTION = "What port does the staging server use?"
SOURCE = "data/docs/environments.md"
COMMAND = "my-rag-app"


def assert_cited_answer(answer: dict[str, Any]) -> None:
    """A model answered, from the right document, cited (by the model, or inferred)."""
    assert set(answer) >= {"answer", "sources", "model", "usage", "retrieval", "trace_id"}
    assert answer["model"], answer
    assert answer["answer"].strip(), answer
    assert answer["sources"][0]["path"] == SOURCE, answer
    cited = [source["path"] for source in answer["sources"] if source["cited"]]
    assert cited == [SOURCE], answer
    assert answer["usage"]["completion_tokens"] > 0
    assert len(answer["trace_id"]) == 32
