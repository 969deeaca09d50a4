"""Ollama: models pulled by name and served on its HTTP API.

Ollama applies each model's own prompt template, so the app always sends chat messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from typing_extensions import override

from ..settings import APP_COMMAND  # noqa: TID252
from .base import Health, PromptStyle, Runner

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..settings import Settings  # noqa: TID252

HTTP_OK = 200


def same_model(available: str, wanted: str) -> bool:
    """Ollama lists `name:latest` for a model pulled as `name`."""
    if ":" not in wanted:
        wanted += ":latest"
    if ":" not in available:
        available += ":latest"
    return available == wanted


def missing_models(available: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """The wanted models Ollama does not have yet."""
    names = list(available)
    return [model for model in wanted if not any(same_model(name, model) for name in names)]


def list_models(client: httpx.Client, base_url: str) -> list[str]:
    """Names of the models Ollama has (GET /api/tags); raises httpx errors."""
    response = client.get(f"{base_url}/api/tags")
    response.raise_for_status()
    models = response.json().get("models", [])
    return [str(model.get("name") or model.get("model")) for model in models]


def wanted_models(settings: Settings) -> list[str]:
    """The models this configuration will call."""
    models = [settings.ollama_model]
    if settings.ollama_embedding_model:
        models.append(settings.ollama_embedding_model)
    return models


class OllamaRunner(Runner):
    """An Ollama server (`ollama serve`, or its container)."""

    name = "ollama"
    label = "Ollama"

    @override
    def check(self, settings: Settings) -> None:
        """Everything has a default; reachability is checked at the first call, not here."""

    @override
    def embeddings_enabled(self, settings: Settings) -> bool:
        """Embeddings need an embedding model, e.g. OLLAMA_EMBEDDING_MODEL=nomic-embed-text."""
        return settings.ollama_embedding_model is not None

    @override
    def detect_prompt_style(self, settings: Settings, client: httpx.Client) -> PromptStyle:
        """Ollama templates the prompt itself."""
        return "chat"

    @override
    def location(self, settings: Settings) -> str:
        """The server's base URL."""
        return settings.ollama_base_url

    @override
    def unavailable_message(self, settings: Settings, detail: str) -> str:
        """Says how to start Ollama, or how to avoid needing it."""
        return (
            f"cannot reach Ollama at {settings.ollama_base_url} ({detail}): start it with "
            f"`ollama serve` and pull the models with `{APP_COMMAND} models pull`, "
            "or set MODEL_RUNNER=embedded to run a GGUF model in-process."
        )

    @override
    def prepare(self, settings: Settings) -> None:
        """LiteLLM's Ollama provider needs no setup."""

    @override
    def health(self, settings: Settings, client: httpx.Client) -> Health:
        """Up, and has every model this configuration calls."""
        base = settings.ollama_base_url
        try:
            available = list_models(client, base)
        except (httpx.HTTPError, ValueError) as exc:
            return Health(
                "fail",
                f"cannot reach {base}: {exc}",
                self.unavailable_message(settings, "down").split(": ", 1)[1],
            )
        missing = missing_models(available, wanted_models(settings))
        if missing:
            return Health(
                "fail", f"{base} lacks {', '.join(missing)}", f"{APP_COMMAND} models pull"
            )
        return Health("pass", f"{base} is up with {', '.join(wanted_models(settings))}")
