"""The one gateway to every model: all chat and embedding calls go through LiteLLM.

`build_gateway(settings)` returns a gateway on a LiteLLM `Router` built from llm.yaml for the
runner MODEL_RUNNER names (see `runners/`). Two things are decided here, once:

- the prompt style: chat messages for instruction-tuned models, a completion prompt (plus stop
  sequences) for base models. PROMPT_STYLE=auto asks the runner (the GGUF's chat template for
  `embedded`, GET /props for `llamacpp`, chat for `ollama` and `hosted`).
- what a failure means: LiteLLM's exceptions become `GatewayError`s whose message says what
  to start or set, with secret values scrubbed.

This module sets LITELLM_LOCAL_MODEL_COST_MAP before LiteLLM is imported, so that importing the
app never reaches for the network (LiteLLM otherwise downloads a price map at import). LiteLLM
itself is imported only when a gateway is built: it takes seconds to import, and the types
here, the fake gateway and the CLI's help should not pay for it.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import logging
import math
import threading
import time
import warnings
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from pydantic import BaseModel

from .runners import Health, PromptStyle, Runner, get_runner
from .runners.deployments import LLMConfig, RouterPlan, load_llm_config, plan
from .runners.errors import (
    GatewayError,
    ModelNotFoundError,
    PromptTooLongError,
    ProviderAuthError,
    RateLimitedError,
    RunnerUnavailableError,
)
from .settings import APP_COMMAND, ConfigError
from .telemetry import model_call

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litellm.router import Router

    from .prompts import Prompt
    from .settings import Settings

logger = logging.getLogger(__name__)

# Servers without pooling send per-token vectors (mean-pooled in `_vector`); the OpenAI SDK's
# types expect flat ones and would warn on every such call.
warnings.filterwarnings(
    "ignore",
    message=r"(?s)Pydantic serializer warnings:.*field_name='embedding'",
    category=UserWarning,
)
# LiteLLM's own types trip a pydantic notice when first used; it is not actionable here.
warnings.filterwarnings(
    "ignore",
    message=r"Item '\w+' on TypedDict class '\w+' is using the `ReadOnly` qualifier",
    category=UserWarning,
)

EMBED_BATCH = 32
OPENAI_MAX_STOPS = 4
_DETAIL_CHARS = 300
_MIN_SCRUB_CHARS = 4
_KEY_VARIABLE = {"hosted": "HOSTED_API_KEY", "llamacpp": "LLAMACPP_API_KEY"}


class Usage(BaseModel):
    """Token counts as reported by the model server (or counted locally)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Generation(BaseModel):
    """A model's answer with what it cost."""

    text: str
    model: str
    usage: Usage
    latency_ms: float


class Gateway(Protocol):
    """What the rest of the app needs from models."""

    @property
    def embeddings_enabled(self) -> bool: ...

    @property
    def chat_model_name(self) -> str: ...

    def generate(self, prompt: Prompt) -> Generation: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def build_gateway(settings: Settings) -> LiteLLMGateway:
    """The real gateway; raises `ConfigError` now for anything that would fail later."""
    settings.require_secrets()
    runner = get_runner(settings.model_runner)
    runner.check(settings)
    config = load_llm_config(settings.llm_config)
    runner.prepare(settings)
    return LiteLLMGateway(settings, runner, config)


@cache
def _unavailable_errors() -> tuple[type[Exception], ...]:
    """LiteLLM's exceptions that mean "the runner is down or failing", not "the request is bad"."""
    from litellm import exceptions as errors  # noqa: PLC0415 - slow import, see module doc

    return (
        errors.APIConnectionError,
        errors.Timeout,
        errors.ServiceUnavailableError,
        errors.BadGatewayError,
        errors.InternalServerError,
    )


@cache
def _litellm_errors() -> tuple[type[Exception], ...]:
    """Every exception LiteLLM raises for a failed call (all are OpenAI SDK error types)."""
    from litellm import exceptions as errors  # noqa: PLC0415 - slow import, see module doc

    return (
        *_unavailable_errors(),
        errors.AuthenticationError,
        errors.PermissionDeniedError,
        errors.NotFoundError,
        errors.BadRequestError,
        errors.UnprocessableEntityError,
        errors.RateLimitError,
        errors.APIError,
        errors.APIResponseValidationError,
    )


def _scrub(text: str, secrets: Sequence[str]) -> str:
    """Replaces secret values (longer than a few characters, so words survive) with ***."""
    for secret in secrets:
        if len(secret) >= _MIN_SCRUB_CHARS:
            text = text.replace(secret, "***")
    return text


class LiteLLMGateway:
    """A `Gateway` on LiteLLM Routers, one per prompt style, built on first use."""

    def __init__(
        self,
        settings: Settings,
        runner: Runner,
        config: LLMConfig,
        *,
        http: httpx.Client | None = None,
    ) -> None:
        import litellm  # noqa: PLC0415 - slow import, see module doc

        litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on errors
        # LiteLLM logs to stdout through handlers of its own, which would corrupt `--json`
        # output: its records go to the app's stderr handler (JSON, secrets scrubbed) instead.
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
            library_logger = logging.getLogger(name)
            library_logger.handlers.clear()
            library_logger.propagate = True
        # LiteLLM cuts stop lists to OpenAI's 4; local runners take any number (see _stops).
        litellm.disable_stop_sequence_limit = True
        self._settings = settings
        self._runner = runner
        self._config = config
        self._secrets = settings.secret_values()
        self._http = http or httpx.Client(timeout=min(10.0, settings.llm_timeout_seconds))
        # Resolving every deployment now turns a missing variable into a start-up error.
        self._overview = plan(config, settings, runner, None)
        fixed = None if settings.prompt_style == "auto" else settings.prompt_style
        if fixed is not None:
            plan(config, settings, runner, fixed)
        self._style: PromptStyle | None = fixed
        self._routers: dict[PromptStyle | None, tuple[Router, RouterPlan]] = {}
        self._lock = threading.Lock()

    @property
    def embeddings_enabled(self) -> bool:
        """False when no embedding model is configured: retrieval is then lexical only."""
        return self._overview.embed_model is not None

    @property
    def chat_model_name(self) -> str:
        """The chat model as configured (the GGUF file name for in-process models)."""
        if self._style is not None and self._style in self._routers:
            return self._routers[self._style][1].chat_model
        return self._overview.chat_model

    @property
    def embed_model_name(self) -> str | None:
        """The embedding model, or None when retrieval is lexical only."""
        return self._overview.embed_model

    @property
    def runner(self) -> Runner:
        """The runner serving the models."""
        return self._runner

    @property
    def prompt_style(self) -> PromptStyle:
        """The style the chat model gets, detected once on first use when PROMPT_STYLE=auto."""
        return self._current_style()

    @property
    def provider(self) -> str:
        """The GenAI provider name for traces: the hosted provider, or the local server kind."""
        if self._runner.name == "hosted" and self._settings.hosted_model:
            return self._settings.hosted_model.split("/", maxsplit=1)[0]
        return {"embedded": "llama_cpp", "llamacpp": "llama_cpp"}.get(
            self._runner.name, self._runner.name
        )

    def health(self) -> Health:
        """Whether the runner is up and has its model (for readiness probes); never raises."""
        return self._runner.health(self._settings, self._http)

    def close(self) -> None:
        """Releases the HTTP client used for probes."""
        self._http.close()

    def generate(self, prompt: Prompt) -> Generation:
        """One answer: chat messages or a completion prompt, as the model needs."""
        style = self._current_style()
        router, chosen = self._router(style)
        kwargs: dict[str, Any] = {
            "max_tokens": prompt.max_tokens,
            "temperature": prompt.temperature,
        }
        if style == "chat":
            messages = [dict(message) for message in prompt.messages]
        else:
            messages = [{"role": "user", "content": prompt.completion}]
            if prompt.stop:
                kwargs["stop"] = self._stops(prompt.stop, chosen)
        operation = "chat" if style == "chat" else "text_completion"
        with model_call(
            operation,
            chosen.chat_model,
            self.provider,
            max_tokens=prompt.max_tokens,
            temperature=prompt.temperature,
        ) as call:
            started = time.perf_counter()
            try:
                response = router.completion(model="chat", messages=messages, **kwargs)
            except _litellm_errors() as exc:
                raise self._explain(exc) from None
            latency_ms = (time.perf_counter() - started) * 1000
            generation = self._generation(response, style, prompt, chosen, latency_ms)
            call.finish(
                response_model=generation.model,
                input_tokens=generation.usage.prompt_tokens,
                output_tokens=generation.usage.completion_tokens,
            )
        # model: what was asked for; model_version: what the provider says answered (a dated
        # snapshot for hosted models, the tag or file for local runners).
        logger.info(
            "generated %d tokens with %s (%s style) in %.0f ms",
            generation.usage.completion_tokens,
            generation.model,
            style,
            latency_ms,
            extra={"model": chosen.chat_model, "model_version": generation.model},
        )
        return generation

    def _generation(
        self,
        response: object,
        style: PromptStyle,
        prompt: Prompt,
        chosen: RouterPlan,
        latency_ms: float,
    ) -> Generation:
        from litellm.types.utils import ModelResponse  # noqa: PLC0415 - loaded by now

        if not isinstance(response, ModelResponse):  # pragma: no cover - we never stream
            raise GatewayError("expected a complete response, got a stream")
        choice = response.choices[0]
        text = getattr(getattr(choice, "message", None), "content", None) or ""
        usage = getattr(response, "usage", None)
        if style == "completion":
            text = _cut_at_stop(text, prompt.stop)
        return Generation(
            text=text.strip(),
            model=response.model or chosen.chat_model,
            usage=Usage(
                prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                total_tokens=getattr(usage, "total_tokens", 0) or 0,
            ),
            latency_ms=latency_ms,
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text, in order; batched to stay within provider limits.

        Vectors are L2-normalised whatever the runner, so cosine similarity is a dot product and
        L2 distance ranks the same way. A server without pooling (llama-cpp-python's server,
        or llama-server without --pooling, on a generative GGUF) answers one vector per token;
        those are mean-pooled, as the embedded runner does.
        """
        if not self.embeddings_enabled:
            raise GatewayError(
                f"no embedding model is configured for MODEL_RUNNER={self._runner.name}; "
                "retrieval is lexical only (see .env.example to configure embeddings)"
            )
        if not texts:
            return []
        router, chosen = self._router(None)
        model = chosen.embed_model or "embed"
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            batch = texts[start : start + EMBED_BATCH]
            with model_call("embeddings", model, self.provider) as call:
                try:
                    response = router.embedding(model="embed", input=list(batch))
                except _litellm_errors() as exc:
                    raise self._explain(exc) from None
                usage = getattr(response, "usage", None)
                input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
                call.finish(
                    response_model=str(getattr(response, "model", None) or model),
                    input_tokens=input_tokens,
                    output_tokens=0,
                )
            items = sorted(response.data, key=lambda item: int(_field(item, "index")))
            vectors.extend(_vector(_field(item, "embedding")) for item in items)
        return vectors

    def _stops(self, stops: Sequence[str], chosen: RouterPlan) -> list[str]:
        """All stop sequences for local runners; OpenAI's limit of 4 when a provider may see them.

        Stops past the fourth are still applied to the text afterwards (`_cut_at_stop`).
        """
        if self._runner.name == "hosted" or chosen.fallbacks:
            return list(stops[:OPENAI_MAX_STOPS])
        return list(stops)

    def _current_style(self) -> PromptStyle:
        if self._style is not None:
            return self._style
        with self._lock:
            if self._style is None:
                try:
                    self._style = self._runner.detect_prompt_style(self._settings, self._http)
                except RunnerUnavailableError:
                    if not self._overview.fallbacks:
                        raise
                    # The local runner is down; the hosted fallback is a chat model. Try to
                    # detect again next time.
                    return "chat"
            return self._style

    def _router(self, style: PromptStyle | None) -> tuple[Router, RouterPlan]:
        with self._lock:
            if style not in self._routers:
                from litellm.router import Router  # noqa: PLC0415 - slow import, see module doc

                chosen = plan(self._config, self._settings, self._runner, style)
                try:
                    router = Router(
                        model_list=chosen.model_list,
                        fallbacks=chosen.fallbacks,
                        **chosen.router_settings,
                    )
                except TypeError as exc:
                    raise ConfigError(
                        f"{self._config.path}: router_settings has an unknown key ({exc})"
                    ) from None
                self._routers[style] = (router, chosen)
            return self._routers[style]

    def _explain(self, exc: Exception) -> GatewayError:
        """LiteLLM's exception as a message that says what to do, secrets scrubbed.

        Raised `from None`: the original may carry a provider's echo of a key, and a chained
        exception would print it in every traceback and log.
        """
        from litellm import exceptions as llm_errors  # noqa: PLC0415 - loaded by now

        raw = str(getattr(exc, "message", None) or exc).strip().splitlines()
        detail = _scrub(raw[0] if raw else type(exc).__name__, self._secrets)[:_DETAIL_CHARS]
        logger.debug("model call failed: %s: %s", type(exc).__name__, detail)
        runner, settings = self._runner, self._settings
        where = f"{runner.label} at {runner.location(settings)}"
        if isinstance(exc, llm_errors.ContextWindowExceededError):
            return PromptTooLongError(
                f"the prompt does not fit the model's context window ({detail}): retrieve fewer "
                "or shorter chunks, lower the answer's max tokens, or raise LLM_CONTEXT_TOKENS."
            )
        if isinstance(exc, llm_errors.AuthenticationError | llm_errors.PermissionDeniedError):
            variable = _KEY_VARIABLE.get(runner.name, "the API key")
            return ProviderAuthError(f"{where} rejected the API key ({detail}): check {variable}.")
        if isinstance(exc, llm_errors.NotFoundError):
            return ModelNotFoundError(
                f"{where} does not have the model {self.chat_model_name} ({detail}): "
                f"run `{APP_COMMAND} models pull`, or fix the model name in your settings."
            )
        if isinstance(exc, llm_errors.RateLimitError):
            return RateLimitedError(f"{where} is rate limiting requests ({detail}); retry later.")
        if isinstance(exc, _unavailable_errors()):
            return RunnerUnavailableError(runner.unavailable_message(settings, detail))
        return GatewayError(f"{where} failed: {detail}")


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """The text up to the first stop sequence, for providers that ignored some of them."""
    cuts = [index for stop in stops if stop and (index := text.find(stop)) >= 0]
    return text[: min(cuts)] if cuts else text


def _vector(raw: Sequence[Any]) -> list[float]:
    """A flat unit vector from a vector, or from per-token vectors (mean-pooled)."""
    if raw and isinstance(raw[0], list | tuple):
        width = len(raw[0])
        vector = [sum(float(token[i]) for token in raw) / len(raw) for i in range(width)]
    else:
        vector = [float(x) for x in raw]
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def _field(item: object, name: str) -> Any:  # noqa: ANN401 - provider payloads are untyped
    """Embedding items are dicts from some providers and objects from others."""
    if isinstance(item, dict):
        return item[name]
    return getattr(item, name)
