"""The LiteLLM custom provider `embedded`: llama-cpp-python models inside this process.

Deployments in llm.yaml say `model: embedded/<label>` and carry the model file and load options
in their `litellm_params` (`model_path`, `prompt_style`, `context_tokens`, `threads`,
`gpu_layers`); LiteLLM hands those to this handler as `optional_params`. With
`prompt_style: completion` the single user message is the raw prompt of a base model; with
`chat` the messages go through the GGUF's own chat template.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

# The gateway module sets LiteLLM's offline switch; it must run before litellm is imported.
from .. import gateway as _gateway  # noqa: F401, TID252

# isort: split
import litellm
from litellm.exceptions import BadRequestError, ContextWindowExceededError
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import Choices, EmbeddingResponse, Message, ModelResponse, Usage
from litellm.utils import custom_llm_setup
from typing_extensions import override

from . import gguf

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import httpx
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler, HTTPHandler
    from llama_cpp.llama_types import CreateCompletionResponse

PROVIDER = "embedded"
DEFAULT_MAX_TOKENS = 256


def _options(params: dict[str, Any]) -> gguf.ModelOptions:
    threads = params.get("threads")
    return gguf.ModelOptions(
        context_tokens=int(params.get("context_tokens") or gguf.ModelOptions.context_tokens),
        threads=int(threads) if threads else None,
        gpu_layers=int(params.get("gpu_layers") or 0),
    )


def _model_path(params: dict[str, Any], model: str) -> Path:
    path = params.get("model_path")
    if not path:
        raise BadRequestError(
            message=f"deployment {PROVIDER}/{model} has no model_path in llm.yaml",
            model=model,
            llm_provider=PROVIDER,
        )
    return Path(str(path))


def _stop(value: object) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(item) for item in cast("Sequence[object]", value)]


def _raise_context_error(exc: ValueError, model: str) -> None:
    """llama-cpp-python says `Requested tokens (N) exceed context window of M`."""
    if "context window" in str(exc):
        raise ContextWindowExceededError(
            message=str(exc), model=model, llm_provider=PROVIDER
        ) from exc


def _normalise(vector: list[float]) -> list[float]:
    """Unit length, so cosine similarity is a dot product, as with hosted embedding APIs."""
    norm = math.sqrt(sum(value * value for value in vector))
    return [value / norm for value in vector] if norm else vector


class EmbeddedLLM(CustomLLM):
    """Serves completion and embedding calls from a cached in-process llama.cpp model."""

    @override
    def completion(
        self,
        model: str,
        messages: list[Any],
        api_base: str,
        custom_prompt_dict: dict[Any, Any],
        model_response: ModelResponse,
        print_verbose: Callable[..., Any],
        encoding: object,
        api_key: object,
        logging_obj: object,
        optional_params: dict[Any, Any],
        acompletion: object = None,
        litellm_params: object = None,
        logger_fn: object = None,
        headers: dict[Any, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
        client: HTTPHandler | None = None,
    ) -> ModelResponse:
        """Generates with the model's chat template, or from a raw prompt for base models."""
        path = _model_path(optional_params, model)
        loaded = gguf.load_model(path, embedding=False, options=_options(optional_params))
        max_tokens = int(optional_params.get("max_tokens") or DEFAULT_MAX_TOKENS)
        temperature = float(optional_params.get("temperature") or 0.0)
        stop = _stop(optional_params.get("stop"))
        seed = optional_params.get("seed")
        try:
            with loaded.lock:
                if optional_params.get("prompt_style") == "completion":
                    prompt = "\n\n".join(str(message.get("content") or "") for message in messages)
                    out = cast(
                        "CreateCompletionResponse",
                        loaded.llama.create_completion(
                            prompt,
                            max_tokens=max_tokens,
                            temperature=temperature,
                            stop=stop,
                            seed=int(seed) if seed is not None else None,
                        ),
                    )
                    choice = out["choices"][0]
                    text, finish = choice["text"], choice["finish_reason"]
                    usage = out["usage"]
                else:
                    chat = loaded.llama.create_chat_completion(
                        messages=messages,
                        max_tokens=max_tokens,
                        temperature=temperature,
                        stop=stop,
                        seed=int(seed) if seed is not None else None,
                    )
                    chat_out = cast("dict[str, Any]", chat)
                    chat_choice = chat_out["choices"][0]
                    text = chat_choice["message"].get("content") or ""
                    finish = chat_choice["finish_reason"]
                    usage = chat_out["usage"]
        except ValueError as exc:
            _raise_context_error(exc, model)
            raise
        model_response.choices = [
            Choices(
                finish_reason=finish or "stop",
                index=0,
                message=Message(content=text, role="assistant"),
            )
        ]
        model_response.model = f"{PROVIDER}/{path.name}"
        setattr(  # noqa: B010 - litellm declares usage dynamically
            model_response,
            "usage",
            Usage(
                prompt_tokens=usage["prompt_tokens"],
                completion_tokens=usage["completion_tokens"],
                total_tokens=usage["total_tokens"],
            ),
        )
        return model_response

    @override
    async def acompletion(
        self,
        model: str,
        messages: list[Any],
        api_base: str,
        custom_prompt_dict: dict[Any, Any],
        model_response: ModelResponse,
        print_verbose: Callable[..., Any],
        encoding: object,
        api_key: object,
        logging_obj: object,
        optional_params: dict[Any, Any],
        acompletion: object = None,
        litellm_params: object = None,
        logger_fn: object = None,
        headers: dict[Any, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
        client: AsyncHTTPHandler | None = None,
    ) -> ModelResponse:
        """The sync path on a worker thread: llama.cpp holds the GIL-free heavy work anyway."""
        return await asyncio.to_thread(
            self.completion,
            model,
            messages,
            api_base,
            custom_prompt_dict,
            model_response,
            print_verbose,
            encoding,
            api_key,
            logging_obj,
            optional_params,
            acompletion,
            litellm_params,
            logger_fn,
            headers,
            timeout,
            None,
        )

    @override
    def embedding(
        self,
        model: str,
        input: list[Any],
        model_response: EmbeddingResponse,
        print_verbose: Callable[..., Any],
        logging_obj: object,
        optional_params: dict[Any, Any],
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        litellm_params: object = None,
    ) -> EmbeddingResponse:
        """One unit vector per input, from a model instance created with `embedding=True`."""
        path = _model_path(optional_params, model)
        loaded = gguf.load_model(path, embedding=True, options=_options(optional_params))
        texts = [str(text) for text in input]
        with loaded.lock:
            out = loaded.llama.create_embedding(texts)
        vectors = [cast("list[float]", item["embedding"]) for item in out["data"]]
        model_response.data = [
            {"object": "embedding", "index": index, "embedding": _normalise(vector)}
            for index, vector in enumerate(vectors)
        ]
        model_response.model = f"{PROVIDER}/{path.name}"
        tokens = out["usage"]["prompt_tokens"]
        model_response.usage = Usage(prompt_tokens=tokens, completion_tokens=0, total_tokens=tokens)
        return model_response

    @override
    async def aembedding(
        self,
        model: str,
        input: list[Any],
        model_response: EmbeddingResponse,
        print_verbose: Callable[..., Any],
        logging_obj: object,
        optional_params: dict[Any, Any],
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        litellm_params: object = None,
    ) -> EmbeddingResponse:
        """The sync path on a worker thread."""
        return await asyncio.to_thread(
            self.embedding,
            model,
            input,
            model_response,
            print_verbose,
            logging_obj,
            optional_params,
            api_key,
            api_base,
            timeout,
            litellm_params,
        )


_handler = EmbeddedLLM()


def register() -> None:
    """Makes `embedded/...` model strings resolve to this handler; safe to call repeatedly."""
    if not any(item["provider"] == PROVIDER for item in litellm.custom_provider_map):
        litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": _handler})
    custom_llm_setup()  # type: ignore[no-untyped-call]
