"""The question every real-model test asks the sample documents, and what a right answer is."""

from __future__ import annotations

from typing import Any

QUESTION = "What port does the staging server use?"
FACT = "8443"
SOURCE = "data/docs/environments.md"
COMMAND = "my-rag-app"


def assert_cited_answer(answer: dict[str, Any]) -> None:
    assert set(answer) >= {"answer", "sources", "model", "usage", "latency_ms", "trace_id"}
    assert FACT in answer["answer"], answer
    cited = [source["path"] for source in answer["sources"] if source.get("cited")]
    assert cited, answer
    assert cited[0] == SOURCE, answer
    assert answer["usage"]["completion_tokens"] > 0
    assert len(answer["trace_id"]) == 32
