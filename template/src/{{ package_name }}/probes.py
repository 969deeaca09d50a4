"""LLM health probes: canary prompts with expected answers, to catch a changed or broken model.

A reachable server is not a working model: a swapped file, a new quantisation or a wrong chat
template answers, but wrongly. Each probe asks a grounded question in the app's own prompt
format and checks the answer against a pattern. Results are cached, so a readiness endpoint
polled every few seconds calls the model at most once per READINESS_CACHE_SECONDS.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Generic, TypeVar

import yaml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from .prompts import SourceText, rag_prompt
from .runners.errors import GatewayError
from .settings import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from .gateway import Gateway

T = TypeVar("T")


class Probe(BaseModel):
    """A canary: a source the model sees, a question about it, and the answer's pattern."""

    name: Annotated[str, Field(min_length=1)]
    context: Annotated[str, Field(min_length=1)]
    question: Annotated[str, Field(min_length=1)]
    expect: Annotated[str, Field(min_length=1, description="A regular expression.")]
    max_tokens: Annotated[int, Field(ge=1, le=256)] = 32


@dataclass(frozen=True)
class ProbeResult:
    """One probe's outcome; ``detail`` says what was expected and what came back."""

    name: str
    ok: bool
    detail: str
    latency_ms: float
    model: str | None = None


def load_probes(path: Path) -> list[Probe]:
    """The probes file (a YAML list), validated."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        probes = TypeAdapter(list[Probe]).validate_python(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read the probes {path}: {exc.strerror}") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path} is not a valid list of probes: {exc}") from None
    if not probes:
        raise ConfigError(f"{path} holds no probe")
    return probes


def run_probe(probe: Probe, gateway: Gateway) -> ProbeResult:
    """Ask one canary; a model error or an unexpected answer fails it with a clear reason."""
    prompt = rag_prompt(
        probe.question, [SourceText(1, "probe", "", probe.context)], max_tokens=probe.max_tokens
    )
    started = time.perf_counter()
    try:
        generation = gateway.generate(prompt)
    except GatewayError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return ProbeResult(
            probe.name, ok=False, detail=f"model call failed: {exc}", latency_ms=elapsed
        )
    elapsed = (time.perf_counter() - started) * 1000
    if re.search(probe.expect, generation.text, flags=re.IGNORECASE):
        return ProbeResult(probe.name, True, "answer as expected", elapsed, generation.model)
    detail = (
        f"expected /{probe.expect}/ but {generation.model} answered {generation.text[:120]!r}: "
        "the model changed or is broken (check the model file, its chat template and "
        "PROMPT_STYLE)"
    )
    return ProbeResult(probe.name, False, detail, elapsed, generation.model)


def run_probes(probes: list[Probe], gateway: Gateway) -> list[ProbeResult]:
    """Every probe, in order."""
    return [run_probe(probe, gateway) for probe in probes]


class TtlCache(Generic[T]):
    """A value computed at most once per ``ttl_seconds``; one caller computes while others wait.

    Readiness checks share it, so an endpoint polled every few seconds calls the model at most
    once per period.
    """

    def __init__(self, compute: Callable[[], T], ttl_seconds: float) -> None:
        self.compute = compute
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, T] | None = None

    def get(self) -> T:
        with self._lock:
            now = time.monotonic()
            if self._cached and now - self._cached[0] < self.ttl_seconds:
                return self._cached[1]
            value = self.compute()
            self._cached = (now, value)
            return value


class ProbeCache(TtlCache[list[ProbeResult]]):
    """Probe results reused for ``ttl_seconds``."""

    def __init__(self, probes: list[Probe], gateway: Gateway, ttl_seconds: float) -> None:
        super().__init__(lambda: run_probes(probes, gateway), ttl_seconds)
        self.probes = probes

    def results(self) -> list[ProbeResult]:
        return self.get()
