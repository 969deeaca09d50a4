"""What one caller, and all callers together, may ask of the API.

- a request body has a size cap (413 beyond it, whether or not it declares its length);
- each caller (an API key, else a client address) has a rate (429 with `Retry-After`) and a
  number of questions in flight (429);
- the model has a few slots and a short queue in front of them: a question that finds both
  full, or waits too long, is told to come back (503 with `Retry-After`) instead of piling up.

Questions run in worker threads of their own, never on the event loop and never in the pool
that serves the other routes: `/healthz` and `/readyz` answer whatever the model is doing.
"""

from __future__ import annotations

import asyncio
import math
import time
from contextlib import suppress
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from anyio import CapacityLimiter
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import Field
from pydantic_settings import SettingsConfigDict
from starlette.datastructures import Headers

from ..config import Group
from ..errors import ModelUnavailableError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

RETRY_SECONDS = 5
_MAX_BUCKETS = 10_000


class LimitSettings(Group):
    """The API's limits (per caller: per API key, or per client address without keys)."""

    model_config = SettingsConfigDict(env_prefix="API_")

    max_body_kb: int = Field(default=256, ge=1, le=1_048_576)
    rate_per_minute: int = Field(default=60, ge=1)
    inflight_per_caller: int = Field(default=4, ge=1)
    model_slots: int = Field(default=2, ge=1, le=64)
    model_queue: int = Field(default=8, ge=0)
    queue_seconds: float = Field(default=30.0, gt=0)


class BodyTooLarge(HTTPException):
    """A request body over the cap (an HTTP error, so FastAPI passes it on as it reads)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            413, detail=f"the request body is over {max_bytes // 1024} KB (API_MAX_BODY_KB)"
        )


class BodyLimit:
    """413 for a body over `max_bytes`: at once when its length is declared, else as soon as
    the bytes received pass the cap (a chunked body is never read to its end)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.max_bytes)
        response = JSONResponse({"detail": error.detail}, status_code=413)
        await response(scope, receive, send)


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class Ticket:
    """A question's place at the model: released once, when its answer is done."""

    limits: Limits
    caller: str
    loop: asyncio.AbstractEventLoop
    done: bool = False

    def release(self) -> None:
        """Give the place back (on the event loop's thread); a second call does nothing."""
        if not self.done:
            self.done = True
            self.limits.leave(self.caller)

    def release_from_thread(self) -> None:
        """`release`, from a worker thread."""
        with suppress(RuntimeError):  # a closed loop: the server is gone, its limits too
            self.loop.call_soon_threadsafe(self.release)


@dataclass
class Limits:
    """Rates, questions in flight and the model's queue; made and used on the event loop."""

    settings: LimitSettings
    threads: CapacityLimiter = field(init=False)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _inflight: dict[str, int] = field(default_factory=dict)
    _slots: asyncio.Semaphore = field(init=False)
    _admitted: int = 0

    def __post_init__(self) -> None:
        self.threads = CapacityLimiter(self.settings.model_slots)
        self._slots = asyncio.Semaphore(self.settings.model_slots)

    def check_rate(self, caller: str) -> None:
        """Spend one request of the caller's rate, or a 429 saying when the next one is due."""
        per_second = self.settings.rate_per_minute / 60
        now = time.monotonic()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._forget_idle(now, per_second)
            bucket = self._buckets[caller] = _Bucket(self.settings.rate_per_minute, now)
        bucket.tokens = min(
            self.settings.rate_per_minute, bucket.tokens + (now - bucket.at) * per_second
        )
        bucket.at = now
        if bucket.tokens < 1:
            wait = math.ceil((1 - bucket.tokens) / per_second)
            raise HTTPException(
                429,
                detail=f"too many requests: {self.settings.rate_per_minute} a minute at most "
                f"(API_RATE_PER_MINUTE); retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        bucket.tokens -= 1

    def _forget_idle(self, now: float, per_second: float) -> None:
        full = self.settings.rate_per_minute
        for name, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * per_second >= full:
                del self._buckets[name]

    async def admit(self, caller: str) -> Ticket:
        """A place at the model for one question, waiting in the queue if need be.

        429 when the caller has too many questions in flight; 503 (`ModelUnavailableError`,
        with `Retry-After`) when the slots and the queue are full or the wait is too long.
        """
        settings = self.settings
        if self._inflight.get(caller, 0) >= settings.inflight_per_caller:
            raise HTTPException(
                429,
                detail=f"too many questions in flight: {settings.inflight_per_caller} at most "
                "(API_INFLIGHT_PER_CALLER); wait for an answer first",
                headers={"Retry-After": str(RETRY_SECONDS)},
            )
        if self._admitted >= settings.model_slots + settings.model_queue:
            raise ModelUnavailableError(
                f"the model is busy: {self._admitted} questions are being answered or waiting "
                "(API_MODEL_SLOTS, API_MODEL_QUEUE); retry in a few seconds"
            )
        self._admitted += 1
        self._inflight[caller] = self._inflight.get(caller, 0) + 1
        try:
            await asyncio.wait_for(self._slots.acquire(), settings.queue_seconds)
        except BaseException as exc:
            self._admitted -= 1
            self._drop(caller)
            if isinstance(exc, TimeoutError):
                raise ModelUnavailableError(
                    f"the model is busy: no slot within {settings.queue_seconds:g} s "
                    "(API_QUEUE_SECONDS); retry in a few seconds"
                ) from None
            raise
        return Ticket(self, caller, asyncio.get_running_loop())

    def leave(self, caller: str) -> None:
        self._admitted -= 1
        self._drop(caller)
        self._slots.release()

    def _drop(self, caller: str) -> None:
        left = self._inflight.get(caller, 1) - 1
        if left:
            self._inflight[caller] = left
        else:
            self._inflight.pop(caller, None)
