"""Where spans go: a local JSONL file by default, an OTLP collector when one is configured.

`configure_telemetry(settings)` is called once per command or server start. The tracer
provider can be installed only once per process, so it carries one span processor whose
exporters are swapped on each call; tests and long-lived processes can reconfigure.

Prompts and answers are recorded only when TRACE_CAPTURE_CONTENT is on, and then through a
`Redactor` that removes the configured secret values, e-mail addresses and key-like strings.
Every string attribute is scrubbed of secret values again at export, whatever recorded it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from . import metrics
from .tracing import ensure_tracer_provider, get_tracer

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span as SdkSpan
    from opentelemetry.util.types import AttributeValue

    from .settings import Settings

REDACTED = "[REDACTED]"
# How long a finished span may wait in memory before it is written to TRACES_PATH.
JSONL_FLUSH_MILLIS = 1000
_MIN_SECRET_CHARS = 4
_PATTERNS = (
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),  # e-mail addresses
    re.compile(r"\b(?:sk|pk|rk|ghp|gho|ghs|xox[abp]|hf|glpat)[-_][A-Za-z0-9_-]{8,}"),  # API keys
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{8,}=*"),  # bearer tokens
    re.compile(r"(?i)(?:password|passwd|secret|token|api[_-]?key)\s*[=:]\s*\S+"),
)


@dataclass(frozen=True)
class Redactor:
    """Removes secret values and common personal data from text before it is recorded."""

    secrets: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) >= _MIN_SECRET_CHARS:
                text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(REDACTED, text)
        return text

    def secrets_only(self, text: str) -> str:
        """Only the configured secret values (for attributes that are not free text)."""
        for secret in self.secrets:
            if len(secret) >= _MIN_SECRET_CHARS:
                text = text.replace(secret, REDACTED)
        return text


@dataclass
class _Policy:
    capture_content: bool = False
    redactor: Redactor = field(default_factory=Redactor)


_policy = _Policy()


def rotated(path: Path) -> Path:
    """Where the previous trace file goes when TRACES_PATH reaches TRACES_MAX_MB."""
    return path.with_name(path.name + ".1")


class JsonlSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file: traces with no server at all.

    The file is bounded: past ``max_bytes`` it becomes ``<name>.1`` (replacing the one before),
    so a long-running server keeps at most about twice that on disk.
    """

    def __init__(self, path: Path, redactor: Redactor, max_bytes: int = 50 * 2**20) -> None:
        self.path = path
        self.redactor = redactor
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(self._record(span), ensure_ascii=False) for span in spans]
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as out:
                    out.writelines(line + "\n" for line in lines)
                    size = out.tell()
                if size >= self.max_bytes:
                    self.path.replace(rotated(self.path))
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _record(self, span: ReadableSpan) -> dict[str, Any]:
        context = span.context
        start, end = span.start_time or 0, span.end_time or 0
        return {
            "trace_id": trace.format_trace_id(context.trace_id) if context else "",
            "span_id": trace.format_span_id(context.span_id) if context else "",
            "parent_id": trace.format_span_id(span.parent.span_id) if span.parent else None,
            "name": span.name,
            "start": datetime.fromtimestamp(start / 1e9, tz=UTC).isoformat(),
            "duration_ms": round((end - start) / 1e6, 3),
            "status": span.status.status_code.name,
            "attributes": {
                key: self._scrub(value) for key, value in (span.attributes or {}).items()
            },
        }

    def _scrub(self, value: AttributeValue) -> Any:  # noqa: ANN401 - any attribute value
        if isinstance(value, str):
            return self.redactor.secrets_only(value)
        if isinstance(value, tuple | list):
            return [self._scrub(item) for item in value]
        return value


class _SwappableProcessor(SpanProcessor):
    """The one processor on the provider; it forwards to whatever was configured last."""

    def __init__(self) -> None:
        self.processors: list[SpanProcessor] = []

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        for processor in self.processors:
            processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self.processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        for processor in self.processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self.processors)

    def replace(self, processors: list[SpanProcessor]) -> None:
        old, self.processors = self.processors, processors
        for processor in old:
            processor.shutdown()


_router = _SwappableProcessor()
_router_lock = threading.Lock()
_installed = False


def configure_telemetry(settings: Settings, *, extra: Sequence[SpanExporter] = ()) -> None:
    """Send spans to TRACES_PATH (and OTLP when configured); set the content policy."""
    global _installed  # noqa: PLW0603 - the tracer provider is process-wide too
    if not settings.tracing_enabled:
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(trace.NoOpTracerProvider())
        _router.replace([])
        return
    ensure_tracer_provider()
    with _router_lock:
        provider = trace.get_tracer_provider()
        if not _installed and isinstance(provider, TracerProvider):
            provider.add_span_processor(_router)
            _installed = True
        redactor = Redactor(tuple(settings.secret_values()))
        _policy.capture_content = settings.trace_capture_content
        _policy.redactor = redactor
        # Batched: spans are written by a background thread, off the request's path. Commands
        # flush at exit (flush_telemetry), and a reconfigure or shutdown flushes too.
        processors: list[SpanProcessor] = [
            BatchSpanProcessor(
                JsonlSpanExporter(
                    settings.traces_path, redactor, int(settings.traces_max_mb * 2**20)
                ),
                schedule_delay_millis=JSONL_FLUSH_MILLIS,
            )
        ]
        if settings.otel_exporter_otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            endpoint = f"{settings.otel_exporter_otlp_endpoint}/v1/traces"
            processors.append(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        processors.extend(SimpleSpanProcessor(exporter) for exporter in extra)
        _router.replace(processors)


def flush_telemetry() -> None:
    """Deliver buffered spans (OTLP batches) before a command exits."""
    _router.force_flush()


def record_content(span: trace.Span, key: str, text: str) -> None:
    """Record a question, prompt or answer on a span, only when capture is on, redacted."""
    if _policy.capture_content:
        span.set_attribute(key, _policy.redactor(text))


@dataclass
class ModelCall:
    """What a model call reports back to its span (and to the metrics) once it is done."""

    span: trace.Span
    operation: str
    started: float = field(default_factory=time.perf_counter)

    def finish(self, *, response_model: str, input_tokens: int, output_tokens: int) -> None:
        self.span.set_attribute("gen_ai.response.model", response_model)
        self.span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        self.span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        metrics.observe_model_call(
            response_model,
            self.operation,
            time.perf_counter() - self.started,
            input_tokens,
            output_tokens,
        )


@contextmanager
def model_call(
    operation: str,
    request_model: str,
    provider: str,
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> Iterator[ModelCall]:
    """A span named and attributed after the OpenTelemetry GenAI semantic conventions.

    A failed call is counted in the error metric by model and exception type.
    """
    with get_tracer().start_as_current_span(
        f"{operation} {request_model}", kind=trace.SpanKind.CLIENT
    ) as span:
        span.set_attribute("gen_ai.operation.name", operation)
        span.set_attribute("gen_ai.system", provider)
        span.set_attribute("gen_ai.provider.name", provider)
        span.set_attribute("gen_ai.request.model", request_model)
        if max_tokens is not None:
            span.set_attribute("gen_ai.request.max_tokens", max_tokens)
        if temperature is not None:
            span.set_attribute("gen_ai.request.temperature", temperature)
        try:
            yield ModelCall(span, operation)
        except Exception as exc:
            metrics.observe_error(type(exc).__name__, model=request_model)
            raise


def current_trace_id() -> str | None:
    """The trace id of the active span, for logs; None outside a trace."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None
