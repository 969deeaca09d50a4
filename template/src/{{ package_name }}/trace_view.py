"""Read the local trace file back: recent traces as trees with timings and token counts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.tree import Tree

from .telemetry import rotated

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class SpanRecord:
    """One span line of the trace file, with its children once the tree is built."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start: str
    duration_ms: float
    status: str
    attributes: dict[str, Any]
    children: list[SpanRecord] = field(default_factory=list)

    @property
    def tokens(self) -> tuple[int, int] | None:
        """(input, output) tokens of a model call span (GenAI conventions), else None."""
        if "gen_ai.operation.name" not in self.attributes:
            return None
        return (
            int(self.attributes["gen_ai.usage.input_tokens"]),
            int(self.attributes.get("gen_ai.usage.output_tokens", 0)),
        )


@dataclass
class TraceRecord:
    """One trace: its root spans (normally one) and when it started."""

    trace_id: str
    start: str
    roots: list[SpanRecord]
    spans: list[SpanRecord]

    def total_tokens(self) -> tuple[int, int]:
        """Input and output tokens of every model call in the trace."""
        counts = [span.tokens for span in self.spans if span.tokens]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)


def read_spans(path: Path) -> list[SpanRecord]:
    """Every span in the file and its rotated predecessor (``<name>.1``), oldest first.

    Lines that are not spans (a torn last write) are skipped.
    """
    lines: list[str] = []
    for part in (rotated(path), path):
        if part.is_file():
            lines.extend(part.read_text(encoding="utf-8").splitlines())
    spans = []
    for line in lines:
        try:
            raw = json.loads(line)
            spans.append(
                SpanRecord(
                    trace_id=raw["trace_id"],
                    span_id=raw["span_id"],
                    parent_id=raw.get("parent_id"),
                    name=raw["name"],
                    start=raw["start"],
                    duration_ms=float(raw["duration_ms"]),
                    status=raw.get("status", "UNSET"),
                    attributes=dict(raw.get("attributes") or {}),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return spans


def recent_traces(path: Path, limit: int = 10, trace_id: str | None = None) -> list[TraceRecord]:
    """The ``limit`` most recent traces (or the one with ``trace_id``), newest last."""
    by_trace: dict[str, list[SpanRecord]] = {}
    for span in read_spans(path):
        if trace_id is None or span.trace_id == trace_id:
            by_trace.setdefault(span.trace_id, []).append(span)
    traces = []
    for tid, spans in by_trace.items():
        ids = {span.span_id: span for span in spans}
        roots = []
        for span in sorted(spans, key=lambda s: s.start):
            parent = ids.get(span.parent_id or "")
            if parent is None:
                roots.append(span)
            else:
                parent.children.append(span)
        traces.append(TraceRecord(tid, min(s.start for s in spans), roots, spans))
    traces.sort(key=lambda t: t.start)
    return traces[-limit:]


def trace_dict(record: TraceRecord) -> dict[str, Any]:
    """One trace as plain data (`traces --json`): totals, then its spans in start order."""
    tokens_in, tokens_out = record.total_tokens()
    return {
        "trace_id": record.trace_id,
        "start": record.start,
        "tokens": {"input": tokens_in, "output": tokens_out},
        "spans": [
            {
                "span_id": span.span_id,
                "parent_id": span.parent_id,
                "name": span.name,
                "start": span.start,
                "duration_ms": span.duration_ms,
                "status": span.status,
                "attributes": span.attributes,
            }
            for span in sorted(record.spans, key=lambda s: s.start)
        ],
    }


def trace_tree(record: TraceRecord) -> Tree:
    """A Rich tree of one trace: span names, durations, models and tokens."""
    tokens_in, tokens_out = record.total_tokens()
    tree = Tree(
        f"[bold]trace {record.trace_id}[/] [dim]{record.start} · "
        f"{tokens_in} in / {tokens_out} out tokens[/]"
    )
    for root in record.roots:
        _add(tree, root)
    return tree


def _add(parent: Tree, span: SpanRecord) -> None:
    label = f"{escape(span.name)} [cyan]{span.duration_ms:.1f} ms[/]"
    model = span.attributes.get("gen_ai.response.model") or span.attributes.get(
        "gen_ai.request.model"
    )
    if model:
        label += f" [magenta]{escape(str(model))}[/]"
    if span.tokens:
        label += f" [green]{span.tokens[0]} in / {span.tokens[1]} out[/]"
    if span.status == "ERROR":
        label += " [red]error[/]"
    node = parent.add(label)
    for child in span.children:
        _add(node, child)
