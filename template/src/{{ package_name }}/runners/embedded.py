"""In-process models: llama-cpp-python loads the GGUF file into the app itself.

No server to start, which makes it the default for laptops and CI; the cost is that the model's
memory lives in the app's process. The LiteLLM side is `embedded_provider.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typing_extensions import override

from ..settings import APP_COMMAND, ConfigError, MissingSettingError, Requirement  # noqa: TID252
from . import gguf
from .base import Health, PromptStyle, Runner

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from ..settings import Settings  # noqa: TID252

_OTHER_RUNNERS = "set MODEL_RUNNER=llamacpp, ollama or hosted"


def _check_file(variable: str, path: Path) -> None:
    if not path.is_file():
        raise ConfigError(
            f"{variable}={path}: no such file. Download the model with "
            f"`{APP_COMMAND} models pull`, or point {variable} at a GGUF file."
        )
    if not gguf.is_gguf(path):
        raise ConfigError(
            f"{variable}={path} is not a GGUF file (an interrupted download or an HTML error "
            f"page?). Delete it and run `{APP_COMMAND} models pull`."
        )


class EmbeddedRunner(Runner):
    """llama-cpp-python in this process, reached through a LiteLLM custom provider."""

    name = "embedded"
    label = "embedded llama-cpp-python model"

    @override
    def check(self, settings: Settings) -> None:
        """The GGUF files must exist now, not at the first question."""
        if settings.gguf_model_path is None:
            raise MissingSettingError(
                [
                    Requirement(
                        "GGUF_MODEL_PATH",
                        "MODEL_RUNNER=embedded loads a GGUF model file in-process "
                        f"(`{APP_COMMAND} models pull` downloads the default one)",
                        example="models/gemma-3-270m-q4_k_m.gguf",
                    )
                ]
            )
        _check_file("GGUF_MODEL_PATH", settings.gguf_model_path)
        if settings.embedding_gguf_path is not None:
            _check_file("EMBEDDING_GGUF_PATH", settings.embedding_gguf_path)

    @override
    def embeddings_enabled(self, settings: Settings) -> bool:
        """Embeddings need their own GGUF setting (it may name the same file)."""
        return settings.embedding_gguf_path is not None

    @override
    def detect_prompt_style(self, settings: Settings, client: httpx.Client) -> PromptStyle:
        """The GGUF says it: instruction-tuned models carry `tokenizer.chat_template`."""
        self.check(settings)
        assert settings.gguf_model_path is not None  # noqa: S101 - check() guarantees it
        return "chat" if gguf.has_chat_template(settings.gguf_model_path) else "completion"

    @override
    def location(self, settings: Settings) -> str:
        """The model file."""
        return (
            str(settings.gguf_model_path) if settings.gguf_model_path else "(GGUF_MODEL_PATH unset)"
        )

    @override
    def unavailable_message(self, settings: Settings, detail: str) -> str:
        """An in-process model fails rather than goes down: say which file and where to look."""
        return (
            f"the embedded model at {self.location(settings)} failed: {detail}. "
            f"Run `{APP_COMMAND} doctor` to check the model file, or {_OTHER_RUNNERS}."
        )

    @override
    def prepare(self, settings: Settings) -> None:
        """Registers the custom provider; imported late because it loads LiteLLM."""
        from .embedded_provider import register  # noqa: PLC0415 - loads LiteLLM

        register()

    @override
    def health(self, settings: Settings, client: httpx.Client) -> Health:
        """Present and a GGUF: an in-process model has nothing else to reach."""
        try:
            self.check(settings)
        except ConfigError as exc:
            return Health("fail", str(exc), f"{APP_COMMAND} models pull")
        assert settings.gguf_model_path is not None  # noqa: S101 - check() guarantees it
        size = settings.gguf_model_path.stat().st_size
        return Health("pass", f"in-process, {settings.gguf_model_path} ({size / 2**20:.0f} MiB)")
