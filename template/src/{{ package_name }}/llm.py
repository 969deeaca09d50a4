"""The one gateway to every model: LiteLLM's Router over the deployments in llm.yaml.

llm.yaml is a LiteLLM Router config (`model_list`, `router_settings`) whose entries name the
runner that serves them in `model_info.runner`. The app calls two aliases, `chat` and `embed`;
`MODEL_RUNNER` picks which runner's entries the Router gets (default: the first runner in the
file). Several entries of one alias are replicas: the Router spreads calls over them and routes
around one that fails. Values may say `${NAME:-default}` (default when unset or empty) or
`${NAME-default}` (default when unset): they resolve from the environment, `.env` and secret
files, so keys never sit in the file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import legacy, runners, tracing
from .errors import ConfigError, ModelError, ModelUnavailableError, problems

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from litellm.router import Router

    from .config import Settings
    from .runners import Health

logger = logging.getLogger(__name__)

Alias = Literal["chat", "embed"]
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")
_UNSET = "<unset:{}>"
_UNSET_FOUND = re.compile(r"<unset:([A-Za-z_][A-Za-z0-9_]*)>")
_EMBED_BATCH = 32
_DETAIL_CHARS = 300
# Replicas (several deployments of one alias): a deployment that fails is set aside at its first
# failure, for this long, and the call goes at once to another one.
REPLICA_COOLDOWN_SECONDS = 30.0


class ModelSource(BaseModel):
    """Where `models pull` gets a GGUF file: a Hugging Face repository, pinned."""

    model_config = ConfigDict(extra="forbid")

    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    file: str
    revision: str = Field(pattern=r"^[0-9a-f]{40}$", description="A commit hash, not a branch.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    license: str = ""


class DeploymentInfo(BaseModel):
    """What the app (not LiteLLM) needs to know about a deployment."""

    model_config = ConfigDict(extra="allow")

    runner: str
    source: ModelSource | None = None
    model_path: str | None = Field(default=None, description="Where a server's GGUF is pulled.")
    query_prefix: str = ""
    document_prefix: str = ""
    min_similarity: float = Field(default=0.5, ge=-1.0, le=1.0)


class Deployment(BaseModel):
    """One `model_list` entry."""

    model_name: Alias
    litellm_params: dict[str, Any]
    model_info: DeploymentInfo

    @property
    def label(self) -> str:
        """The model as a person names it: the GGUF file, or the provider's model name."""
        path = self.litellm_params.get("model_path")
        return Path(str(path)).name if path else str(self.litellm_params["model"])

    @property
    def address(self) -> str:
        """Where it runs: `host:port` of its server (its URL stripped), else its model name."""
        return address(self.litellm_params.get("api_base")) or str(self.litellm_params["model"])


class LlmConfig(BaseModel):
    """llm.yaml, validated."""

    model_list: list[Deployment] = Field(min_length=1)
    router_settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _replicas_agree(self) -> LlmConfig:
        """Replicas (entries of one alias for one runner) are one model served several times:
        none listed twice, and embedding replicas with the same prefixes and threshold (the
        vectors of two models do not mix in one index)."""
        for runner in self.runners():
            for alias in ("chat", "embed"):
                group = self.deployments(runner, alias)
                seen: set[str] = set()
                for deployment in group:
                    key = json.dumps(deployment.litellm_params, sort_keys=True, default=str)
                    if key in seen:
                        msg = f"{runner} lists the same {alias} deployment twice"
                        raise ValueError(msg)
                    seen.add(key)
                if alias == "embed" and len(group) > 1:
                    fields = {"query_prefix", "document_prefix", "min_similarity", "source"}
                    kinds = {d.model_info.model_dump_json(include=fields) for d in group}
                    if len(kinds) > 1:
                        msg = (
                            f"the embed replicas of {runner} differ in {', '.join(sorted(fields))}:"
                            " replicas must serve one embedding model (vectors of two do not mix)"
                        )
                        raise ValueError(msg)
        return self

    def runners(self) -> list[str]:
        """Runners in the order the file names them."""
        return list(dict.fromkeys(d.model_info.runner for d in self.model_list))

    def deployments(self, runner: str, alias: Alias) -> list[Deployment]:
        """The entries of one runner for one alias."""
        return [
            d for d in self.model_list if d.model_info.runner == runner and d.model_name == alias
        ]


def address(api_base: object) -> str | None:
    """`host:port` of a server URL (no user, password, path or query), None without one."""
    if not api_base:
        return None
    parts = urllib.parse.urlsplit(str(api_base))
    if not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # not a number: not worth a label
        return host
    return f"{host}:{port}"


def resolve(text: str, environment: Mapping[str, str]) -> str:
    """Replace `${NAME}`, `${NAME:-default}` and `${NAME-default}` with their values.

    A required variable that is unset becomes a marker, an error only if the deployments in use
    contain it (a hosted key is not needed to run a local model).
    """

    def value(match: re.Match[str]) -> str:
        name, operator, default = match.groups()
        found = environment.get(name)
        if operator == ":-" and not found:
            return default or ""
        if operator == "-" and found is None:
            return default or ""
        return _UNSET.format(name) if found is None else found

    return _REFERENCE.sub(value, text)


def check_set(deployments: Sequence[Deployment], path: Path) -> None:
    """A `ConfigError` naming every required variable the deployments use but nobody set."""
    dumped = " ".join(d.model_dump_json() for d in deployments)
    missing = sorted(set(_UNSET_FOUND.findall(dumped)))
    if missing:
        raise ConfigError(
            f"{path} needs {', '.join(missing)}: set it in the environment, in .env, or as a "
            "file of that name in the secrets directory (SECRETS_DIR)"
        )


def load_config(path: Path, environment: Mapping[str, str]) -> LlmConfig:
    """llm.yaml with its references resolved, or a `ConfigError` naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path} (LLM_CONFIG): {exc.strerror}") from None
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    try:
        raw = yaml.safe_load(resolve("\n".join(lines), environment))
        return LlmConfig.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path}: {problems(exc)}") from None


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

    def stream(self, messages: Sequence[Mapping[str, str]]) -> Iterator[str | Generation]: ...


class Gateway:
    """Chat and embeddings through LiteLLM for the runner `MODEL_RUNNER` names."""

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
        check_set(self.chat + self.embeds, settings.model.config)
        self.module = runners.get(self.runner)
        self._router: Router | None = None
        self._secrets = settings.secret_values()

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
            import litellm  # noqa: PLC0415 - imported by now
            from litellm.router import Router  # noqa: PLC0415

            litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners
            # The app traces its own model calls (tracing.span). LiteLLM's logging of each
            # streamed token (an event loop per token, in a thread) would only take CPU from the
            # model: about 1.5 ms per token on 2 cores.
            litellm.disable_streaming_logging = True
            # LiteLLM logs to stdout through handlers of its own, which would corrupt `--json`
            # output: its records go to the app's logging (stderr) instead.
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
                logging.getLogger(name).handlers.clear()
                logging.getLogger(name).propagate = True

            model_list = [d.model_dump(exclude={"model_info"}) for d in self.chat + self.embeds]
            self._router = Router(model_list=model_list, **self.router_settings())
            if self.replicas > 1:
                _log_failed_deployments()
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
        return self.module.health(self.chat + self.embeds)

    def generate(self, messages: Sequence[Mapping[str, str]]) -> Generation:
        """One answer, all at once."""
        generation: Generation | None = None
        for item in self.stream(messages):
            if isinstance(item, Generation):
                generation = item
        assert generation is not None  # noqa: S101 - stream always ends with one
        return generation

    def stream(self, messages: Sequence[Mapping[str, str]]) -> Iterator[str | Generation]:
        """The answer's text as it is generated, then the finished `Generation`."""
        model = self.settings.model
        with tracing.span(
            "chat", **_gen_ai("chat", self.chat_model, self.runner, model.max_answer_tokens)
        ) as span:
            started = time.perf_counter()
            first: float | None = None
            parts: list[str] = []
            usage = Usage()
            name = self.chat_model
            with self._errors():
                chunks = self.router().completion(
                    model="chat",
                    messages=[dict(m) for m in messages],
                    max_tokens=model.max_answer_tokens,
                    temperature=model.temperature,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                deployment = self._answered_by(chunks, self.chat)
                for chunk in cast("Iterable[Any]", chunks):
                    text = chunk.choices[0].delta.content if chunk.choices else None
                    if text:
                        first = first or time.perf_counter()
                        parts.append(text)
                        yield text
                    if getattr(chunk, "usage", None):
                        usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
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
                response = self.router().embedding(model="embed", input=batch)
                span["server.address"] = self._answered_by(response, self.embeds)
            items = sorted(response.data, key=lambda item: int(_get(item, "index")))
            vectors.extend(_unit(_get(item, "embedding")) for item in items)
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

    def _errors(self) -> _ErrorTranslator:
        return _ErrorTranslator(self)

    def explain(self, exc: Exception) -> ModelError:
        """LiteLLM's error as a message that says what to do, with secrets scrubbed."""
        from litellm import exceptions as errors  # noqa: PLC0415 - loaded by now

        lines = str(getattr(exc, "message", None) or exc).strip().splitlines()
        detail = lines[0] if lines else type(exc).__name__
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        detail = detail[:_DETAIL_CHARS]
        where = f"{self.runner} ({self.chat_model})"
        if isinstance(exc, _cooldown_errors()):
            seconds = float(self.router_settings().get("cooldown_time", REPLICA_COOLDOWN_SECONDS))
            return ModelUnavailableError(
                f"{where} is unavailable: each of its {self.replicas} deployments failed and is "
                f"set aside for up to {seconds:.0f} s; {self.module.hint()} ({detail})"
            )
        if isinstance(exc, errors.ContextWindowExceededError):
            return ModelError(
                f"the prompt does not fit {where}'s context window: lower RAG_CONTEXT_TOKENS "
                f"or LLM_MAX_ANSWER_TOKENS ({detail})"
            )
        if isinstance(exc, errors.AuthenticationError | errors.PermissionDeniedError):
            return ModelError(f"{where} rejected the API key: check it in .env ({detail})")
        if isinstance(exc, errors.NotFoundError):
            return ModelError(
                f"{where} does not have the model: run `models pull`, or fix llm.yaml ({detail})"
            )
        if isinstance(exc, _unavailable_errors()):
            return ModelUnavailableError(f"{where} is unavailable: {self.module.hint()} ({detail})")
        return ModelError(f"{where} failed: {detail}")


class _ErrorTranslator:
    """Turns LiteLLM's exceptions into the app's, raised `from None` (no key in a traceback)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _: object
    ) -> None:
        if isinstance(exc, _litellm_errors()):
            raise self.gateway.explain(exc) from None


@cache
def _litellm_errors() -> tuple[type[Exception], ...]:
    import openai  # noqa: PLC0415 - LiteLLM's errors derive from the OpenAI SDK's

    return (openai.OpenAIError, *_cooldown_errors())


@cache
def _cooldown_errors() -> tuple[type[Exception], ...]:
    """What the Router raises when every replica of an alias is cooling down after failures."""
    import_litellm()
    from litellm.types.router import RouterRateLimitError  # noqa: PLC0415

    return (RouterRateLimitError,)


@cache
def _log_failed_deployments() -> None:
    """A warning for every call a deployment fails, naming it (`host:port`): with replicas, the
    Router then sets it aside and the caller never sees the error. Once per process."""
    import litellm  # noqa: PLC0415 - imported by now
    from litellm.integrations.custom_logger import CustomLogger  # noqa: PLC0415

    class FailedDeployments(CustomLogger):
        def log_failure_event(
            self, kwargs: dict[str, Any], response_obj: object, start_time: object, end_time: object
        ) -> None:
            del response_obj, start_time, end_time  # LiteLLM's signature
            params = kwargs.get("litellm_params") or {}
            where = address(params.get("api_base")) or str(kwargs.get("model", ""))
            error = type(kwargs.get("exception")).__name__
            logger.warning(
                "deployment %s failed (%s): set aside, a replica gets the call", where, error
            )

    litellm.callbacks.append(FailedDeployments())


@cache
def import_litellm() -> None:
    """LiteLLM, imported on first use (it takes seconds) and told how to behave first.

    LiteLLM reads two variables when imported: without them it fetches a model price list from
    GitHub, and loads the `.env` it finds into the process environment (config.py reads `.env`
    itself, in a documented order with the secrets directory). A value set by the user wins.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_MODE", "PRODUCTION")
    import litellm  # noqa: PLC0415, F401


@cache
def _unavailable_errors() -> tuple[type[Exception], ...]:
    import_litellm()
    from litellm import exceptions as errors  # noqa: PLC0415

    return (
        errors.APIConnectionError,
        errors.Timeout,
        errors.ServiceUnavailableError,
        errors.InternalServerError,
        errors.BadGatewayError,
        errors.RateLimitError,
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
