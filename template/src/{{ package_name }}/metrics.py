"""Prometheus metrics: request and model-call latency, tokens, and errors by model and route.

The collectors live in one registry of their own (not the library's global one), so that the
API's ``/metrics`` shows exactly these and tests can read them back.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST
_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

REQUEST_SECONDS = Histogram(
    "app_request_duration_seconds",
    "HTTP request latency by route, method and status code.",
    ["route", "method", "status"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
MODEL_CALL_SECONDS = Histogram(
    "app_model_call_duration_seconds",
    "Model call latency by model and operation (chat, text_completion, embeddings).",
    ["model", "operation"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
MODEL_TOKENS = Counter(
    "app_model_tokens",
    "Tokens sent to (input) and received from (output) each model.",
    ["model", "direction"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "app_errors",
    "Failed model calls (by model) and failed requests (by route), by error type.",
    ["model", "route", "error"],
    registry=REGISTRY,
)


def observe_model_call(
    model: str, operation: str, seconds: float, input_tokens: int = 0, output_tokens: int = 0
) -> None:
    """Record one successful model call."""
    MODEL_CALL_SECONDS.labels(model=model, operation=operation).observe(seconds)
    if input_tokens:
        MODEL_TOKENS.labels(model=model, direction="input").inc(input_tokens)
    if output_tokens:
        MODEL_TOKENS.labels(model=model, direction="output").inc(output_tokens)


def observe_error(error: str, *, model: str = "", route: str = "") -> None:
    """Record one failed model call or request."""
    ERRORS.labels(model=model, route=route, error=error).inc()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Record one HTTP request."""
    REQUEST_SECONDS.labels(route=route, method=method, status=str(status)).observe(seconds)


def exposition() -> bytes:
    """The metrics in Prometheus' text format."""
    return generate_latest(REGISTRY)
