"""A llama.cpp server (`llama-server`, or `python -m llama_cpp.server`), OpenAI-compatible.

LiteLLM reaches it as an OpenAI-compatible endpoint: `/v1/chat/completions` for chat models,
`/v1/completions` for base models. The runner itself only probes it: `/health` and `/props`
exist on llama.cpp's own server; llama-cpp-python's server has neither, so `/v1/models` stands
in for health and a missing `/props` means "no chat template known": completion style.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from typing_extensions import override

from .base import Health, PromptStyle, Runner
from .errors import RunnerUnavailableError

if TYPE_CHECKING:
    from ..settings import Settings  # noqa: TID252

HTTP_OK = 200
HTTP_NOT_FOUND = 404
HTTP_UNAVAILABLE = 503


def _headers(settings: Settings) -> dict[str, str]:
    if settings.llamacpp_api_key is None:
        return {}
    return {"Authorization": f"Bearer {settings.llamacpp_api_key.get_secret_value()}"}


class LlamaCppRunner(Runner):
    """A llama.cpp HTTP server started by the user, compose, or a test fixture."""

    name = "llamacpp"
    label = "llama.cpp server"

    @override
    def check(self, settings: Settings) -> None:
        """Everything has a default; reachability is checked at the first call, not here."""

    @override
    def embeddings_enabled(self, settings: Settings) -> bool:
        """Embeddings need a server started with `--embedding`, named by its own URL."""
        return settings.llamacpp_embedding_base_url is not None

    @override
    def detect_prompt_style(self, settings: Settings, client: httpx.Client) -> PromptStyle:
        """Chat iff the server reports a chat template at GET /props."""
        url = f"{settings.llamacpp_base_url}/props"
        try:
            response = client.get(url, headers=_headers(settings))
        except httpx.TransportError as exc:
            raise RunnerUnavailableError(self.unavailable_message(settings, str(exc))) from None
        if response.status_code != HTTP_OK:
            return "completion"
        try:
            props = response.json()
        except ValueError:
            return "completion"
        template = props.get("chat_template") if isinstance(props, dict) else None
        return "chat" if isinstance(template, str) and template.strip() else "completion"

    @override
    def location(self, settings: Settings) -> str:
        """The server's base URL."""
        return settings.llamacpp_base_url

    @override
    def unavailable_message(self, settings: Settings, detail: str) -> str:
        """Says how to start a server on the configured port, or how to avoid needing one."""
        port = httpx.URL(settings.llamacpp_base_url).port or 8080
        model = settings.gguf_model_path or "MODEL.gguf"
        return (
            f"cannot reach the llama.cpp server at {settings.llamacpp_base_url} ({detail}): "
            f"start it with `make up` (the compose stack serves it) or "
            f"`llama-server -m {model} --port {port}`, "
            "or set MODEL_RUNNER=embedded to run the model in-process."
        )

    @override
    def prepare(self, settings: Settings) -> None:
        """LiteLLM's OpenAI-compatible provider needs no setup."""

    @override
    def health(self, settings: Settings, client: httpx.Client) -> Health:
        """GET /health (llama.cpp), falling back to GET /v1/models (llama-cpp-python)."""
        base = settings.llamacpp_base_url
        fix = self.unavailable_message(settings, "down").split(": ", 1)[1]
        try:
            response = client.get(f"{base}/health", headers=_headers(settings))
            if response.status_code == HTTP_NOT_FOUND:
                response = client.get(f"{base}/v1/models", headers=_headers(settings))
        except httpx.TransportError as exc:
            return Health("fail", f"cannot reach {base}: {exc}", fix)
        if response.status_code == HTTP_OK:
            return Health("pass", f"{base} is up")
        if response.status_code == HTTP_UNAVAILABLE:
            return Health("warn", f"{base} is still loading its model", "wait, then retry")
        return Health("fail", f"{base} answered HTTP {response.status_code}", fix)
