"""Answers streamed as Server-Sent Events: the generator runs in a thread of its own (a span
must end in the thread where it began) and hands its items to the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import anyio
from fastapi.sse import format_sse_event

from ..errors import AppError
from ..rag import Answer, Retrieved

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator

    from .limits import Limits, Ticket

_DONE = object()


async def answered(limits: Limits, caller: str, ask: Callable[[], Answer]) -> Answer:
    """`ask()`'s answer, once the caller is admitted to the model, in a worker thread of the
    questions' own (see limits.py)."""
    ticket = await limits.admit(caller)
    try:
        return await anyio.to_thread.run_sync(ask, limiter=limits.threads)
    finally:
        ticket.release()


async def streamed(
    limits: Limits, caller: str, items: Iterator[Any]
) -> tuple[Any, AsyncGenerator[Any]]:
    """The first item of a streamed answer and the rest, once the caller is admitted to the
    model: errors before the first byte still get a status code."""
    stream = in_a_thread(items, await limits.admit(caller))
    try:
        first = await anext(stream)
    except BaseException:
        await stream.aclose()
        raise
    return first, stream


async def in_a_thread(items: Iterator[Any], ticket: Ticket) -> AsyncGenerator[Any]:
    """Run a generator to its end in one thread of its own, handing its items to the event
    loop; the ticket is released when the thread is done.

    A streamed answer's spans stay open across items, and a span must end in the thread where
    it began. A client that goes away stops the generator after the item at hand.
    """
    loop = asyncio.get_running_loop()
    handover: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()
    stop = threading.Event()

    def hand(item: tuple[bool, Any]) -> None:
        try:
            loop.call_soon_threadsafe(handover.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening
            stop.set()

    produce = (_produce, items, hand, stop, ticket.release_from_thread)
    threading.Thread(target=contextvars.copy_context().run, args=produce, daemon=True).start()
    try:
        while True:
            ok, value = await handover.get()
            if ok:
                yield value
            elif value is _DONE:
                return
            else:
                raise value
    finally:
        stop.set()


def _produce(
    items: Iterator[Any],
    hand: Callable[[tuple[bool, Any]], None],
    stop: threading.Event,
    done: Callable[[], None],
) -> None:
    """Hand over each item, then the end or the error; stop early when asked."""
    try:
        for item in items:
            if stop.is_set():
                break
            hand((True, item))
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises
        hand((False, exc))
    else:
        hand((False, _DONE))
    finally:
        if isinstance(items, Generator):
            items.close()
        done()


async def events(
    first: Retrieved | str | Answer, rest: AsyncGenerator[Retrieved | str | Answer]
) -> AsyncIterator[bytes]:
    """`sources` (trace id and sources), `token` events (JSON strings), `answer` (the whole
    answer with citations and usage), then `done`; a failure midway becomes an `error` event
    (the status line is sent by then)."""

    def event(item: Retrieved | str | Answer) -> bytes:
        if isinstance(item, str):
            return format_sse_event(event="token", data_str=json.dumps(item))
        name = "answer" if isinstance(item, Answer) else "sources"
        return format_sse_event(event=name, data_str=item.model_dump_json())

    try:
        yield event(first)
        async for item in rest:
            yield event(item)
    except AppError as exc:
        yield format_sse_event(event="error", data_str=json.dumps({"detail": str(exc)}))
        return
    finally:
        await rest.aclose()
    yield format_sse_event(event="done", data_str="{}")
