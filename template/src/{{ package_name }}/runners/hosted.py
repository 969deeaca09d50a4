"""A hosted provider (OpenAI, Anthropic, Mistral, ...), reached through LiteLLM with an API key.

`HOSTED_MODEL` is a LiteLLM model string such as `openai/gpt-4o-mini`; the key is the secret
`HOSTED_API_KEY`. Hosted models are instruction-tuned, so the app sends chat messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typing_extensions import override

from ..settings import MissingSettingError, Requirement  # noqa: TID252
from .base import Health, PromptStyle, Runner

if TYPE_CHECKING:
    import httpx

    from ..settings import Settings  # noqa: TID252


class HostedRunner(Runner):
    """A provider on the internet; nothing to start, a key to keep."""

    name = "hosted"
    label = "hosted provider"

    @override
    def check(self, settings: Settings) -> None:
        """The model must be named, and the key set (the key is a secret: checked at start)."""
        settings.require_secrets()
        if not settings.hosted_model:
            raise MissingSettingError(
                [
                    Requirement(
                        "HOSTED_MODEL",
                        "MODEL_RUNNER=hosted needs a LiteLLM model name",
                        example="openai/gpt-4o-mini",
                    )
                ]
            )

    @override
    def embeddings_enabled(self, settings: Settings) -> bool:
        """Embeddings need HOSTED_EMBEDDING_MODEL, e.g. openai/text-embedding-3-small."""
        return settings.hosted_embedding_model is not None

    @override
    def detect_prompt_style(self, settings: Settings, client: httpx.Client) -> PromptStyle:
        """Hosted models are chat models."""
        return "chat"

    @override
    def location(self, settings: Settings) -> str:
        """The API base when set, else the provider named by the model string."""
        if settings.hosted_api_base:
            return settings.hosted_api_base
        model = settings.hosted_model or "(HOSTED_MODEL unset)"
        return model.split("/", 1)[0] if "/" in model else model

    @override
    def unavailable_message(self, settings: Settings, detail: str) -> str:
        """Network or provider trouble: say which provider, and the local way out."""
        return (
            f"cannot reach the hosted provider {self.location(settings)} for "
            f"HOSTED_MODEL={settings.hosted_model} ({detail}): check the network and "
            "HOSTED_API_BASE, or set MODEL_RUNNER=embedded to use a local model."
        )

    @override
    def prepare(self, settings: Settings) -> None:
        """LiteLLM's providers need no setup."""

    @override
    def health(self, settings: Settings, client: httpx.Client) -> Health:
        """Configured is all we check: a real probe would spend tokens on every run."""
        missing = [
            req.variable for req in settings.missing_secrets() if req.variable == "HOSTED_API_KEY"
        ]
        if not settings.hosted_model:
            missing.insert(0, "HOSTED_MODEL")
        if missing:
            return Health("fail", f"{', '.join(missing)} not set", "see .env.example")
        return Health("pass", f"{settings.hosted_model} configured (not probed: costs tokens)")
