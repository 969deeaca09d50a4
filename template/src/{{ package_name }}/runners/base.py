"""The contract every runner meets, and the result of probing one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import httpx

    from ..settings import Settings  # noqa: TID252

PromptStyle = Literal["chat", "completion"]
Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Health:
    """The result of probing a runner: doctor shows it, readiness probes use it."""

    status: Status
    detail: str
    fix: str = ""


class Runner(Protocol):
    """What the gateway and doctor need from a way of serving models."""

    @property
    def name(self) -> str:
        """The MODEL_RUNNER value."""
        ...

    @property
    def label(self) -> str:
        """A human name for messages."""
        ...

    def check(self, settings: Settings) -> None:
        """Raises `ConfigError` when settings this runner needs are missing or wrong."""
        ...

    def embeddings_enabled(self, settings: Settings) -> bool:
        """Whether an embedding model is configured; without one retrieval is lexical only."""
        ...

    def detect_prompt_style(self, settings: Settings, client: httpx.Client) -> PromptStyle:
        """For PROMPT_STYLE=auto: chat for instruct models, completion for base models."""
        ...

    def location(self, settings: Settings) -> str:
        """Where the model is served (a URL, or a file for in-process models)."""
        ...

    def unavailable_message(self, settings: Settings, detail: str) -> str:
        """What to say, and what to do, when the runner cannot be reached or fails."""
        ...

    def prepare(self, settings: Settings) -> None:
        """One-time setup before LiteLLM calls (e.g. registering a custom provider)."""
        ...

    def health(self, settings: Settings, client: httpx.Client) -> Health:
        """Whether the runner is up and has its model; never raises."""
        ...
