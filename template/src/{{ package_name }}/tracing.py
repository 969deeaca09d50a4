"""OpenTelemetry spans for questions, retrieval and generation.

The app only uses the OpenTelemetry *API*; an SDK tracer provider is installed when nobody else
has (an ``opentelemetry-instrument`` wrapper or a later tracing layer with exporters wins), so
that every answer has a real trace id to quote in a bug report or find in a trace viewer.
"""

from __future__ import annotations

import secrets
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

SERVICE_NAME = __name__.rsplit(".", maxsplit=1)[0]

_lock = threading.Lock()


def ensure_tracer_provider() -> None:
    """Install an SDK tracer provider unless one is already configured."""
    with _lock:
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
            trace.set_tracer_provider(provider)


def get_tracer() -> trace.Tracer:
    """The app's tracer (spans are recorded once a provider is installed)."""
    ensure_tracer_provider()
    return trace.get_tracer(SERVICE_NAME)


def trace_id_hex(span: trace.Span) -> str:
    """The span's trace id as 32 hex digits.

    A non-recording provider gives no trace id; a random one still lets logs and the answer
    refer to the same request.
    """
    context = span.get_span_context()
    if context.is_valid:
        return trace.format_trace_id(context.trace_id)
    return secrets.token_hex(16)
