"""Where observability hooks in: the app marks its steps as spans, with attributes.

By itself this records nothing and costs nothing: `span` yields a dict that is dropped, and
trace ids are random. A tracing backend (`observability.py`, when the project has it) installs
itself with `install`, and from then on every span is exported with its attributes.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator

Attributes = dict[str, Any]


class Tracer(Protocol):
    """What a tracing backend provides."""

    def span(self, name: str, attributes: Attributes) -> AbstractContextManager[Attributes]:
        """A span around a step; attributes added to the yielded dict are recorded at its end."""
        ...

    def trace_id(self) -> str | None:
        """The id of the current trace (32 hex digits), when there is one."""
        ...


_tracer: Tracer | None = None


def install(tracer: Tracer | None) -> None:
    """Send spans to `tracer` from now on (None: record nothing again)."""
    global _tracer  # noqa: PLW0603 - one process-wide backend, set once at start
    _tracer = tracer


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Attributes]:  # noqa: ANN401 - any value
    """Mark a step of the app; add attributes to the yielded dict as they become known."""
    if _tracer is None:
        yield attributes
        return
    with _tracer.span(name, attributes) as recorded:
        yield recorded


def trace_id() -> str:
    """The current trace's id, or a fresh random one: every answer carries an id for feedback."""
    current = _tracer.trace_id() if _tracer is not None else None
    return current or uuid.uuid4().hex
