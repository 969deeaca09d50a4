"""The one gateway to every model: the runner's deployments from llm.yaml, chat and embeddings.

The app calls two aliases, `chat` and `embed`; `MODEL_RUNNER` picks which runner's entries
serve them (default: the first runner in llm.yaml). A runner that runs models in this process
(in-process GGUF) is called directly: no LiteLLM to import, nothing between the model and the
first token. Any other goes through LiteLLM's Router: several entries of one alias are replicas,
the Router spreads calls over them and routes around one that fails.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from .. import legacy, tracing
from . import runners
from ..errors import ConfigError
from .config import RunnerInfo, address, check_set, load_config
from .translate import Explainer, import_litellm, log_failed_deployments

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from litellm.router import Router

    from ..config import Settings
    from .runners import Health
    from .config import Deployment, DeploymentInfo, LlmConfig

logger = logging.getLogger(__name__)

_EMBED_BATCH = 32
# Replicas (several deployments of one alias): a deployment that fails is set aside at its first
# failure, for this long, and the call goes at once to another one.
REPLICA_COOLDOWN_SECONDS = 30.0


@dataclass
class Usage:
    """Tokens a model call used."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Generation:
    """A finished answer from the chat model."""

    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    first_token_ms: float | None = None
    deployment: str = ""  # which deployment answered: `host:port` of its server, or its model


class ChatModel(Protocol):
    """What answering needs: the chat model's name and a stream of its answer."""

    @property
    def chat_model(self) -> str: ...

    def stream(
        self, messages: Sequence[Mapping[str, str]], *, max_tokens: int | None = None
    ) -> Iterator[str | Generation]: ...


class Gateway:
    """Chat and embeddings from the runner `MODEL_RUNNER` names."""

    def __init__(self, settings: Settings, config: LlmConfig | None = None) -> None:
        self.settings = settings
        self.config = config or load_config(settings.model.config, settings.environment)
        known = self.config.runners()
        self.runner = legacy.runner_name(settings.model.runner or known[0])
        if self.runner not in known:
            raise ConfigError(
                f"MODEL_RUNNER={self.runner}: {settings.model.config} has no deployment for it; "
                f"it has {', '.join(known)}"
            )
        self.chat = self.config.deployments(self.runner, "chat")
        self.embeds = self.config.deployments(self.runner, "embed")
        if not self.chat:
            raise ConfigError(f"{settings.model.config} has no chat deployment for {self.runner}")
        check_set(self.deployments, settings.model.config)
        self.module = runners.get(self.runner)
        self.config.check(
            self.deployments,
            getattr(self.module, "Info", None) or RunnerInfo,
            getattr(self.module, "Params", None),
        )
        # A runner in this process is called directly (one model per alias: no replicas).
        self.direct = hasattr(self.module, "stream")
        if self.direct and self.replicas > 1:
            raise ConfigError(
                f"{settings.model.config}: the {self.runner} runner takes one chat and one embed "
                "deployment (replicas are for servers)"
            )
        self._router: Router | None = None
        self._last_deployment = ""
        self._secrets = settings.secret_values()

    @property
    def deployments(self) -> list[Deployment]:
        """The runner's deployments in use: chat, then embed."""
        return self.chat + self.embeds

    def part(self, what: str, default: Callable[..., Any] | None = None) -> Callable[..., Any]:
        """An optional part of the runner's module (`pull`, `files`...): `default` when it has
        none, else a `ConfigError` saying so."""
        found = getattr(self.module, what, None) or default
        if found is None:
            raise ConfigError(f"the {self.runner} runner has no `models {what}`: nothing to do")
        return cast("Callable[..., Any]", found)

    @property
    def chat_model(self) -> str:
        return self.chat[0].label

    @property
    def embed_model(self) -> str | None:
        return self.embeds[0].label if self.embeds else None

    @property
    def embedding(self) -> DeploymentInfo | None:
        """The embedding deployment's settings (prefixes, similarity), or None without one."""
        return self.embeds[0].model_info if self.embeds else None

    def router(self) -> Router:
        """The LiteLLM Router, built on first use (importing LiteLLM takes seconds)."""
        if self._router is None:
            import_litellm()
            self.module.prepare()
            from litellm.router import Router  # noqa: PLC0415

            model_list = [d.model_dump(exclude={"model_info"}) for d in self.deployments]
            self._router = Router(model_list=model_list, **self.router_settings())
            if self.replicas > 1:
                log_failed_deployments()
        return self._router

    @property
    def replicas(self) -> int:
        """The most deployments of one alias (1: no replicas)."""
        return max(len(self.chat), len(self.embeds))

    def router_settings(self) -> dict[str, Any]:
        """The Router's settings: those of llm.yaml over the app's.

        One deployment per alias: no cooldowns (one would only hide the real error behind
        "no deployments available"). Replicas: a deployment that fails is set aside at its first
        failure for REPLICA_COOLDOWN_SECONDS, and the call is retried at once on another, so a
        call tries every replica before it fails.
        """
        settings: dict[str, Any] = {
            "num_retries": self.settings.model.max_retries,
            "timeout": self.settings.model.timeout_seconds,
            "disable_cooldowns": self.replicas == 1,
        }
        if self.replicas > 1:
            settings.update(
                num_retries=self.settings.model.max_retries + self.replicas - 1,
                allowed_fails=0,
                cooldown_time=REPLICA_COOLDOWN_SECONDS,
                retry_after=0,
            )
        return {**settings, **self.config.router_settings}

    def health(self) -> Health:
        """Whether the runner is up and has its models; never raises."""
        return self.module.health(self.deployments)

    def generate(self, messages: Sequence[Mapping[str, str]]) -> Generation:
        """One answer, all at once."""
        generation: Generation | None = None
        for item in self.stream(messages):
            if isinstance(item, Generation):
                generation = item
        assert generation is not None  # noqa: S101 - stream always ends with one
        return generation

    def stream(
        self, messages: Sequence[Mapping[str, str]], *, max_tokens: int | None = None
    ) -> Iterator[str | Generation]:
        """The answer's text as it is generated, then the finished `Generation`; at most
        `max_tokens` (LLM_MAX_ANSWER_TOKENS unless given)."""
        max_tokens = max_tokens or self.settings.model.max_answer_tokens
        with tracing.span(
            "chat", **_gen_ai("chat", self.chat_model, self.runner, max_tokens)
        ) as span:
            started = time.perf_counter()
            first: float | None = None
            parts: list[str] = []
            usage = Usage()
            name = self.chat_model
            deployment = self.chat[0].address
            with self._errors():
                for text, counts in self._chunks(messages, max_tokens):
                    if counts:
                        usage = counts
                    if text:
                        first = first or time.perf_counter()
                        parts.append(text)
                        yield text
                deployment = self._last_deployment or deployment
            done = time.perf_counter()
            generation = Generation(
                text="".join(parts).strip(),
                model=name,
                usage=usage,
                latency_ms=(done - started) * 1000,
                first_token_ms=(first - started) * 1000 if first else None,
                deployment=deployment,
            )
            logger.info(
                "%s at %s answered in %.0f ms (first token %.0f ms): %d tokens in, %d out",
                name,
                deployment,
                generation.latency_ms,
                generation.first_token_ms or 0,
                usage.prompt_tokens,
                usage.completion_tokens,
            )
            span.update(
                {
                    # Recorded only when a tracer captures content (then redacted).
                    "gen_ai.prompt": json.dumps(list(messages)),
                    "gen_ai.completion": generation.text,
                    "gen_ai.response.model": name,
                    "server.address": deployment,
                    "gen_ai.usage.input_tokens": usage.prompt_tokens,
                    "gen_ai.usage.output_tokens": usage.completion_tokens,
                    "gen_ai.server.time_to_first_token": (generation.first_token_ms or 0) / 1000,
                }
            )
        yield generation

    def embed(self, texts: Sequence[str], *, query: bool = False) -> list[list[float]]:
        """Unit vectors for `texts` (documents, or a question with `query`), in order."""
        info = self.embedding
        if info is None:
            raise ConfigError(
                f"{self.settings.model.config} has no embed deployment for {self.runner}: "
                "add one, or set RAG_LEXICAL_ONLY=true for keyword search only"
            )
        prefix = info.query_prefix if query else info.document_prefix
        vectors: list[list[float]] = []
        for start in range(0, len(texts), _EMBED_BATCH):
            batch = [prefix + text for text in texts[start : start + _EMBED_BATCH]]
            with (
                tracing.span(
                    "embeddings", **_gen_ai("embeddings", self.embed_model, self.runner)
                ) as span,
                self._errors(),
            ):
                if self.direct:
                    raw = self.module.embed(self.embeds[0], batch)  # type: ignore[attr-defined]
                    span["server.address"] = self.embeds[0].address
                else:
                    response = self.router().embedding(model="embed", input=batch)
                    span["server.address"] = self._answered_by(response, self.embeds)
                    items = sorted(response.data, key=lambda item: int(_get(item, "index")))
                    raw = [_get(item, "embedding") for item in items]
            vectors.extend(_unit(vector) for vector in raw)
        return vectors

    @staticmethod
    def _answered_by(response: object, deployments: Sequence[Deployment]) -> str:
        """Which deployment the Router picked for `response`: its `host:port`, or its model."""
        hidden = getattr(response, "_hidden_params", None) or {}
        found = address(hidden.get("api_base"))
        if found:
            return found
        picked = [d for d in deployments if d.litellm_params.get("model") == hidden.get("model")]
        return (picked or list(deployments))[0].address

    def _chunks(
        self, messages: Sequence[Mapping[str, str]], max_tokens: int
    ) -> Iterator[tuple[str, Usage | None]]:
        """The answer's pieces, from the runner itself or through the Router; the last ones
        carry the token counts."""
        model = self.settings.model
        self._last_deployment = ""
        if self.direct:
            pieces = self.module.stream(  # type: ignore[attr-defined]
                self.chat[0],
                [dict(m) for m in messages],
                max_tokens=max_tokens,
                temperature=model.temperature,
            )
            for piece in cast("Iterable[str | tuple[int, int]]", pieces):
                yield (piece, None) if isinstance(piece, str) else ("", Usage(*piece))
            return
        chunks = self.router().completion(
            model="chat",
            messages=[dict(m) for m in messages],
            max_tokens=max_tokens,
            temperature=model.temperature,
            stream=True,
            stream_options={"include_usage": True},
        )
        self._last_deployment = self._answered_by(chunks, self.chat)
        for chunk in cast("Iterable[Any]", chunks):
            text = chunk.choices[0].delta.content if chunk.choices else None
            counts = getattr(chunk, "usage", None)
            usage = Usage(counts.prompt_tokens, counts.completion_tokens) if counts else None
            yield text or "", usage

    def _errors(self) -> Explainer:
        """Turns LiteLLM's exceptions into the app's (a direct runner raises the app's own)."""
        seconds = float(self.router_settings().get("cooldown_time", REPLICA_COOLDOWN_SECONDS))
        return Explainer(
            where=f"{self.runner} ({self.chat_model})",
            hint=self.module.hint(),
            secrets=self._secrets,
            replicas=self.replicas,
            cooldown_seconds=seconds,
        )


def _gen_ai(operation: str, model: str | None, runner: str, max_tokens: int = 0) -> dict[str, Any]:
    """OpenTelemetry GenAI attributes of a model call."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": model or "",
        "gen_ai.system": runner,
    }
    if max_tokens:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    return attributes


def _get(item: object, name: str) -> Any:  # noqa: ANN401 - provider payloads are untyped
    return item[name] if isinstance(item, dict) else getattr(item, name)


def _unit(raw: Sequence[Any]) -> list[float]:
    """A unit vector (cosine similarity becomes a dot product), mean-pooled if per token."""
    if raw and isinstance(raw[0], list | tuple):
        raw = [sum(float(t[i]) for t in raw) / len(raw) for i in range(len(raw[0]))]
    vector = [float(x) for x in raw]
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector
