"""OpenAI's chat completions API over the app's own pipeline, for the clients teams already use
(the `openai` SDK, LangChain, LiteLLM, Open WebUI, LibreChat).

- `GET /v1/models` lists the app as one model (`API_MODEL_ID`, the project's name by default).
- `POST /v1/chat/completions` answers from the indexed documents, whole or streamed as
  `chat.completion.chunk` events, through the same API keys (as bearer tokens), limits and
  worker threads as `/v1/ask`. The last message is the question; the user and assistant
  messages before it are the conversation. System and developer messages are not obeyed: the
  app's own prompt, which keeps answers to the documents, decides how to answer.
- Citations are in the text, as a `Sources:` footer of numbered document paths (clients that
  drop fields they do not know still show it), and at the top level of the completion (the
  last chunk when streamed): `citations`, the path of each source by its number, and `sources`,
  the sources as `/v1/ask` gives them. The answering model is the `system_fingerprint`.
- Errors have OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, so the clients
  raise the exception they document (`AuthenticationError`, `RateLimitError`...).
"""

from __future__ import annotations

import json
import re
import time
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import APP_NAME
from ..conversation import MAX_TURN_CHARS, Turn
from ..errors import AppError
from ..rag import Answer, Retrieved
from .headers import brief
from .limits import RETRY_SECONDS
from .routes import Caller, Shared  # noqa: TC001 - FastAPI reads the annotations at run time
from .streaming import answered, streamed

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Mapping

_STARTED = int(time.time())
# The footer this module adds to an answer, taken off again when a client sends the answer back.
_FOOTER = re.compile(r"\n*Sources(?: searched)?:\n(?:\[\d+\] [^\n]*(?:\n|$))+\s*$")
_TYPES = {401: "invalid_request_error", 404: "invalid_request_error", 429: "requests"}
_SERVER = 500
_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded", 503: "unavailable"}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """An error as OpenAI's API gives it."""

    error: ErrorDetail


def error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON error response in OpenAI's shape."""
    detail = ErrorDetail(
        message=message, type=_kind(status), param=param, code=code or _CODES.get(status)
    )
    return JSONResponse(ErrorBody(error=detail).model_dump(), status_code=status, headers=headers)


def _kind(status: int) -> str:
    return _TYPES.get(status, "server_error" if status >= _SERVER else "invalid_request_error")


class OpenAIRoute(APIRoute):
    """A route whose errors (its dependencies' and its validation's too) take OpenAI's shape;
    a validation error is a 400, as OpenAI's API answers it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def shaped(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                first = exc.errors()[0]
                where = [str(brief(part)) for part in first.get("loc", ())[1:]]
                param = ".".join(where) or None
                message = str(brief(first.get("msg", "invalid request")))
                return error(400, f"{param}: {message}" if param else message, param=param)
            except HTTPException as exc:
                return error(exc.status_code, str(exc.detail), headers=exc.headers)
            except AppError as exc:
                status = exc.http_status
                if status == HTTPStatus.UNPROCESSABLE_ENTITY:  # a question too long: as OpenAI
                    status = HTTPStatus.BAD_REQUEST
                unavailable = status == HTTPStatus.SERVICE_UNAVAILABLE
                retry = {"Retry-After": str(RETRY_SECONDS)} if unavailable else None
                return error(status, str(exc), headers=retry)

        return shaped


class Part(BaseModel):
    """A part of a message's content; only text is understood."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: str = ""


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[Part] | None = None

    @field_validator("content")
    @classmethod
    def _text_only(cls, content: str | list[Part] | None) -> str | list[Part] | None:
        if isinstance(content, list) and any(part.type != "text" for part in content):
            raise ValueError("only text content is supported (parts of type `text`)")
        return content

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """OpenAI's chat completion request. Sampling parameters (`temperature`, `max_tokens`,
    `stop`...) are accepted and ignored: the app's model settings decide them. `n` above 1,
    `tools`, `functions` and a `response_format` other than text are refused."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=256)
    messages: list[Message] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    response_format: dict[str, Any] | None = None
    top_k: int | None = Field(
        default=None, ge=1, le=50, description="Not OpenAI's: how many sources to retrieve."
    )


def refused(body: ChatRequest, model_id: str) -> JSONResponse | None:
    """An OpenAI-shaped error for what this endpoint cannot do, or None."""
    if body.model != model_id:
        return error(
            404,
            f"the model `{body.model}` does not exist: this server answers as `{model_id}` "
            "(GET /v1/models)",
            param="model",
            code="model_not_found",
        )
    if body.n is not None and body.n != 1:
        return error(400, "n: only one choice is generated (n=1)", param="n")
    for name in ("tools", "functions"):
        if getattr(body, name):
            return error(400, f"{name}: tool calls are not supported", param=name)
    if body.response_format and body.response_format.get("type") not in (None, "text"):
        return error(400, "response_format: only text answers", param="response_format")
    last = body.messages[-1]
    if last.role != "user" or not last.text().strip():
        return error(400, "messages: the last one must be the user's question", param="messages")
    return None


def conversation(messages: list[Message]) -> tuple[str, list[Turn]]:
    """The question (the last message) and the user and assistant turns before it, the
    `Sources:` footers taken off the answers and each turn cut to its first MAX_TURN_CHARS
    characters; system, developer and tool messages are left out (the rag keeps the most recent
    turns within RAG_HISTORY_TURNS and RAG_HISTORY_TOKENS)."""
    *before, last = messages
    history = [
        Turn(role="user", content=m.text()[:MAX_TURN_CHARS])
        if m.role == "user"
        else Turn(role="assistant", content=_FOOTER.sub("", m.text())[:MAX_TURN_CHARS])
        for m in before
        if m.role in {"user", "assistant"} and m.text().strip()
    ]
    return last.text(), history


def footer(answer: Answer) -> str:
    """The sources the answer cites as a numbered list of paths; all it was given when it cites
    none (under "Sources searched:"); nothing when nothing was found."""
    cited = [source for source in answer.sources if source.cited]
    shown, title = (cited, "Sources:") if cited else (answer.sources, "Sources searched:")
    lines = [f"[{s.n}] {s.path}" + (f" > {s.heading}" if s.heading else "") for s in shown]
    return f"\n\n{title}\n" + "\n".join(lines) if lines else ""


def extras(answer: Answer) -> dict[str, Any]:
    """What the completion says beyond OpenAI's fields: `citations[n - 1]` is the path of the
    source cited as [n]; `sources` as `/v1/ask` gives them; `rewritten_question`, the follow-up
    as it was searched for (None when it was not rewritten)."""
    return {
        "citations": [source.path for source in answer.sources],
        "sources": [source.model_dump() for source in answer.sources],
        "rewritten_question": answer.rewritten_question,
    }


def usage(answer: Answer) -> dict[str, int]:
    used = answer.usage
    return {
        "prompt_tokens": used.prompt_tokens,
        "completion_tokens": used.completion_tokens,
        "total_tokens": used.prompt_tokens + used.completion_tokens,
    }


def completion(answer: Answer, model_id: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": answer.answer + footer(answer), "refusal": None}
    return {
        "id": f"chatcmpl-{answer.trace_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "system_fingerprint": answer.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": usage(answer),
        **extras(answer),
    }


async def chunks(
    first: Retrieved | str | Answer,
    rest: AsyncGenerator[Retrieved | str | Answer],
    model_id: str,
    *,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The answer as `chat.completion.chunk` events: the role, the text as it is generated, the
    footer, the end with the citations, the usage (when asked), then `[DONE]`. A failure midway
    is an `error` event (the status line is sent by then)."""
    trace_id = first.trace_id if isinstance(first, Retrieved) else ""
    base = {
        "id": f"chatcmpl-{trace_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model_id,
        "system_fingerprint": None,
    }

    def data(item: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(item)}\n\n".encode()

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> bytes:  # noqa: ANN401
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return data({**base, "choices": [choice], **more})

    answer: Answer | None = None
    said = False
    try:
        yield chunk({"role": "assistant", "content": ""})
        async for item in rest:
            if isinstance(item, str):
                said = said or bool(item.strip())
                yield chunk({"content": item})
            elif isinstance(item, Answer):
                answer = item
    except AppError as exc:
        kind = _kind(exc.http_status)
        yield data({"error": {"message": str(exc), "type": kind, "param": None, "code": None}})
        return
    finally:
        await rest.aclose()
    assert answer is not None  # noqa: S101 - a stream always ends with its answer
    base["system_fingerprint"] = answer.model
    # An answer given without the model (nothing found) or left empty was not streamed.
    yield chunk({"content": ("" if said else answer.answer) + footer(answer)})
    yield chunk({}, "stop", **extras(answer))
    if include_usage:
        yield data({**base, "choices": [], "usage": usage(answer)})
    yield b"data: [DONE]\n\n"


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "An invalid or unsupported request"),
        (401, "An API key is needed (as a bearer token)"),
        (404, "No such model"),
        (429, "Over the caller's rate or questions in flight (see Retry-After)"),
        (503, "The index or the model is unavailable or busy (see Retry-After)"),
    )
}
router = APIRouter(route_class=OpenAIRoute, tags=["openai"], responses=ERRORS)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _STARTED, "owned_by": APP_NAME}


def _model_id(request: Request) -> str:
    model_id: str = request.app.state.api.model_id
    return model_id


@router.get("/v1/models")
async def models(request: Request, _: Caller) -> dict[str, Any]:
    """The app, as the one model this server answers as."""
    return {"object": "list", "data": [_model(_model_id(request))]}


@router.get("/v1/models/{model}")
async def model(model: str, request: Request, _: Caller) -> Response:
    if model != _model_id(request):
        return error(404, f"the model `{model}` does not exist", code="model_not_found")
    return JSONResponse(_model(model))


@router.post(
    "/v1/chat/completions",
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE"}},
)
async def chat_completions(
    body: ChatRequest, shared: Shared, who: Caller, request: Request
) -> Response:
    """Answer the conversation's last question from the indexed documents, as OpenAI's API
    does (`stream: true` for chunks). The text ends with the sources it cites."""
    model_id = _model_id(request)
    refusal = refused(body, model_id)
    if refusal is not None:
        return refusal
    question, history = conversation(body.messages)
    rag = shared.ready_rag()
    if not body.stream:
        ask = partial(rag.ask, question, body.top_k, history=history)
        return JSONResponse(completion(await answered(shared.limits, who, ask), model_id))
    first, rest = await streamed(
        shared.limits, who, rag.stream(question, body.top_k, history=history)
    )
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return StreamingResponse(
        chunks(first, rest, model_id, include_usage=include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
