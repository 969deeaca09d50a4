"""All configuration, read once from the environment, `.env` and a secrets directory.

Precedence, highest first: arguments to `Settings(...)`, environment variables, `.env` in the
working directory, one file per secret in the secrets directory, then the defaults below. The
secrets directory is `SECRETS_DIR` when set (it must be set in the environment, because it says
where the other settings come from), else `/run/secrets` when it exists: that is where Docker
Compose `secrets:` and Kubernetes secret volumes put files. File names match the variable name
in any case (`HOSTED_API_KEY` or `hosted_api_key`); surrounding whitespace is stripped.

Secrets are `SecretStr`: their values never appear in `repr`, `str`, logs or exceptions. The
only place that reveals them is the gateway, when it hands a key to LiteLLM.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

Runner = Literal["embedded", "llamacpp", "ollama", "hosted"]
PromptStyleSetting = Literal["auto", "chat", "completion"]

DEFAULT_SECRETS_DIR = Path("/run/secrets")


def _command_name() -> str:
    """The console script that runs this package (pyproject `[project.scripts]`), for messages."""
    package = __name__.split(".", maxsplit=1)[0]
    for entry in entry_points(group="console_scripts"):
        if entry.value.split(":", maxsplit=1)[0] == f"{package}.cli":
            return entry.name
    return package


# Messages name the command to run, e.g. "run `my-rag-app models pull`".
APP_COMMAND = _command_name()


class AppError(Exception):
    """An error the app explains to its user: CLI and API show the message, not a traceback."""


class ConfigError(AppError):
    """The configuration cannot work as given; the message says which variable to change."""


@dataclass(frozen=True)
class Requirement:
    """A variable the chosen configuration needs but does not have."""

    variable: str
    reason: str
    secret: bool = False
    example: str = "..."


class MissingSettingError(ConfigError):
    """One or more required variables are unset; raised at start, before any model call."""

    def __init__(self, missing: list[Requirement]) -> None:
        self.missing = missing
        super().__init__("\n".join(_explain(req) for req in missing))


class MissingSecretError(MissingSettingError):
    """A required secret is unset. The message names it and every way to provide it."""


def _explain(req: Requirement) -> str:
    """Says what is missing, why, and the ways to set it, so the fix needs no docs."""
    head = f"{req.variable} is not set, but {req.reason}."
    ways = (
        f"Set it in the environment (export {req.variable}={req.example}), "
        f"in .env ({req.variable}={req.example})"
    )
    if req.secret:
        ways += (
            f", or as a file named {req.variable} (or {req.variable.lower()}) in the secrets "
            f"directory (SECRETS_DIR, default {DEFAULT_SECRETS_DIR}; Docker Compose `secrets:` "
            "mount there)"
        )
    return f"{head} {ways}."


def default_secrets_dir() -> Path | None:
    """`SECRETS_DIR`, else `/run/secrets` if present; a wrong explicit value is an error."""
    explicit = os.environ.get("SECRETS_DIR", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"SECRETS_DIR={explicit} is not a directory: create it or unset SECRETS_DIR"
            )
        return path
    return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None


class Settings(BaseSettings):
    """Typed settings; the only place that reads the environment."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    # --- model runner ---
    model_runner: Runner = Field(default="embedded", validation_alias="MODEL_RUNNER")
    prompt_style: PromptStyleSetting = Field(default="auto", validation_alias="PROMPT_STYLE")
    llm_config: Path = Field(default=Path("llm.yaml"), validation_alias="LLM_CONFIG")
    llm_timeout_seconds: float = Field(default=120.0, gt=0, validation_alias="LLM_TIMEOUT_SECONDS")
    llm_max_retries: int = Field(default=2, ge=0, le=10, validation_alias="LLM_MAX_RETRIES")
    hosted_fallback: bool = Field(default=True, validation_alias="HOSTED_FALLBACK")

    # embedded: llama-cpp-python in this process
    gguf_model_path: Path | None = Field(default=None, validation_alias="GGUF_MODEL_PATH")
    embedding_gguf_path: Path | None = Field(default=None, validation_alias="EMBEDDING_GGUF_PATH")
    llm_context_tokens: int = Field(default=4096, ge=256, validation_alias="LLM_CONTEXT_TOKENS")
    llm_threads: int | None = Field(default=None, ge=1, validation_alias="LLM_THREADS")
    llm_gpu_layers: int = Field(default=0, ge=-1, validation_alias="LLM_GPU_LAYERS")

    # llamacpp: a llama.cpp (or llama-cpp-python) OpenAI-compatible server
    llamacpp_base_url: str = Field(
        default="http://localhost:8080", validation_alias="LLAMACPP_BASE_URL"
    )
    llamacpp_model: str = Field(default="local", min_length=1, validation_alias="LLAMACPP_MODEL")
    llamacpp_api_key: SecretStr | None = Field(default=None, validation_alias="LLAMACPP_API_KEY")
    llamacpp_embedding_base_url: str | None = Field(
        default=None, validation_alias="LLAMACPP_EMBEDDING_BASE_URL"
    )

    # ollama
    ollama_base_url: str = Field(
        default="http://localhost:11434", validation_alias="OLLAMA_BASE_URL"
    )
    ollama_model: str = Field(default="gemma3:270m", min_length=1, validation_alias="OLLAMA_MODEL")
    ollama_embedding_model: str | None = Field(
        default=None, validation_alias="OLLAMA_EMBEDDING_MODEL"
    )

    # hosted: any provider LiteLLM knows, by API key
    hosted_model: str | None = Field(default=None, validation_alias="HOSTED_MODEL")
    hosted_api_key: SecretStr | None = Field(default=None, validation_alias="HOSTED_API_KEY")
    hosted_api_base: str | None = Field(default=None, validation_alias="HOSTED_API_BASE")
    hosted_embedding_model: str | None = Field(
        default=None, validation_alias="HOSTED_EMBEDDING_MODEL"
    )

    # model files
    models_dir: Path = Field(default=Path("models"), validation_alias="MODELS_DIR")
    models_manifest: Path = Field(default=Path("models.yaml"), validation_alias="MODELS_MANIFEST")
    hf_endpoint: str = Field(default="https://huggingface.co", validation_alias="HF_ENDPOINT")
    hf_token: SecretStr | None = Field(default=None, validation_alias="HF_TOKEN")
    download_timeout_seconds: float = Field(
        default=60.0, gt=0, validation_alias="DOWNLOAD_TIMEOUT_SECONDS"
    )

    # --- retrieval settings ---
    # Documents and chunking.
    docs_path: Path = Field(default=Path("data/docs"), validation_alias="DOCS_PATH")
    max_document_bytes: int = Field(default=20_000_000, gt=0, validation_alias="MAX_DOCUMENT_BYTES")
    chunk_strategy: Literal["auto", "markdown", "recursive", "fixed"] = Field(
        default="auto", validation_alias="CHUNK_STRATEGY"
    )
    chunk_max_tokens: int = Field(default=256, ge=16, validation_alias="CHUNK_MAX_TOKENS")
    chunk_overlap_tokens: int = Field(default=32, ge=0, validation_alias="CHUNK_OVERLAP_TOKENS")
    chunk_config_filename: str = Field(
        default=".chunking.toml", min_length=1, validation_alias="CHUNK_CONFIG_FILENAME"
    )
    # Index store.
    vector_store: Literal["sqlite", "pgvector"] = Field(
        default="sqlite", validation_alias="VECTOR_STORE"
    )
    sqlite_path: Path = Field(default=Path("data/index.sqlite3"), validation_alias="SQLITE_PATH")
    pgvector_dsn: SecretStr | None = Field(default=None, validation_alias="PGVECTOR_DSN")
    pgvector_table_prefix: str = Field(
        default="rag", pattern=r"^[a-z_][a-z0-9_]{0,40}$", validation_alias="PGVECTOR_TABLE_PREFIX"
    )
    # Retrieval and answering.
    retrieval_top_k: int = Field(default=4, ge=1, le=50, validation_alias="RETRIEVAL_TOP_K")
    retrieval_candidates: int = Field(
        default=20, ge=1, le=500, validation_alias="RETRIEVAL_CANDIDATES"
    )
    retrieval_rrf_k: int = Field(default=60, ge=1, validation_alias="RETRIEVAL_RRF_K")
    retrieval_min_lexical_score: float = Field(
        default=0.0, ge=0.0, validation_alias="RETRIEVAL_MIN_LEXICAL_SCORE"
    )
    retrieval_min_similarity: float = Field(
        default=0.85, ge=-1.0, le=1.0, validation_alias="RETRIEVAL_MIN_SIMILARITY"
    )
    retrieval_vector_weight: float = Field(
        default=1.0, ge=0.0, validation_alias="RETRIEVAL_VECTOR_WEIGHT"
    )
    rag_context_tokens: int = Field(default=1500, ge=64, validation_alias="RAG_CONTEXT_TOKENS")
    rag_max_answer_tokens: int = Field(
        default=200, ge=1, le=4096, validation_alias="RAG_MAX_ANSWER_TOKENS"
    )
    # HTTP API.
    api_host: str = Field(default="127.0.0.1", validation_alias="API_HOST")
    api_port: int = Field(default=8000, ge=1, le=65535, validation_alias="API_PORT")
    readiness_cache_seconds: float = Field(
        default=30.0, ge=0.0, validation_alias="READINESS_CACHE_SECONDS"
    )
    # --- end retrieval settings ---
    # --- operations: traces, logs, feedback, evals, probes ---
    tracing_enabled: bool = Field(default=True, validation_alias="TRACING_ENABLED")
    traces_path: Path = Field(default=Path("data/traces.jsonl"), validation_alias="TRACES_PATH")
    traces_max_mb: float = Field(default=50.0, gt=0.0, validation_alias="TRACES_MAX_MB")
    trace_capture_content: bool = Field(default=False, validation_alias="TRACE_CAPTURE_CONTENT")
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    log_format: Literal["json", "text"] = Field(default="json", validation_alias="LOG_FORMAT")
    feedback_path: Path = Field(
        default=Path("data/feedback.sqlite3"), validation_alias="FEEDBACK_PATH"
    )
    eval_cases_path: Path = Field(
        default=Path("evals/cases.yaml"), validation_alias="EVAL_CASES_PATH"
    )
    eval_baseline_path: Path = Field(
        default=Path("evals/baseline.json"), validation_alias="EVAL_BASELINE_PATH"
    )
    eval_reports_dir: Path = Field(default=Path("build/evals"), validation_alias="EVAL_REPORTS_DIR")
    eval_cost_per_million_input_tokens: float = Field(
        default=0.0, ge=0.0, validation_alias="EVAL_COST_PER_MILLION_INPUT_TOKENS"
    )
    eval_cost_per_million_output_tokens: float = Field(
        default=0.0, ge=0.0, validation_alias="EVAL_COST_PER_MILLION_OUTPUT_TOKENS"
    )
    probes_path: Path = Field(default=Path("evals/probes.yaml"), validation_alias="PROBES_PATH")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Finds the secrets directory at construction time, so tests and compose can move it."""
        if isinstance(file_secret_settings, SecretsSettingsSource) and (
            file_secret_settings.secrets_dir is None
        ):
            secrets_dir = default_secrets_dir()
            if secrets_dir is not None:
                file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator(
        "llamacpp_base_url",
        "llamacpp_embedding_base_url",
        "ollama_base_url",
        "hosted_api_base",
        "hf_endpoint",
        "otel_exporter_otlp_endpoint",
    )
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        """URLs are joined with paths later; one canonical form avoids `//v1`."""
        return value.rstrip("/") if value else value

    @field_validator("llamacpp_api_key", "hosted_api_key", "hf_token", mode="after")
    @classmethod
    def _blank_secret_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        """A blank secret (an empty file, `KEY=` in .env) means unset, not an empty key."""
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    def missing_secrets(self) -> list[Requirement]:
        """Secrets the chosen configuration needs and does not have; empty when all is set."""
        missing: list[Requirement] = []
        if self.model_runner == "hosted" and self.hosted_api_key is None:
            missing.append(
                Requirement(
                    "HOSTED_API_KEY", "MODEL_RUNNER=hosted needs the provider's API key", True
                )
            )
        if getattr(self, "vector_store", None) == "pgvector" and (
            getattr(self, "pgvector_dsn", None) is None
        ):
            missing.append(
                Requirement(
                    "PGVECTOR_DSN",
                    "VECTOR_STORE=pgvector needs the database connection string",
                    True,
                    "postgresql://user:password@host:5432/db",  # pragma: allowlist secret
                )
            )
        return missing

    def require_secrets(self) -> None:
        """Stops the app at start, with a message naming each missing secret and how to set it."""
        missing = self.missing_secrets()
        if missing:
            raise MissingSecretError(missing)

    def secret_values(self) -> list[str]:
        """Every secret value that is set, so error text from libraries can be scrubbed."""
        return [
            value.get_secret_value()
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr) and value.get_secret_value()
        ]

    def by_variable(self) -> dict[str, object]:
        """Values by environment variable name: what `os.environ/NAME` in llm.yaml refers to.

        Secrets stay `SecretStr` here; only the gateway reveals them, at the moment it hands
        them to LiteLLM.
        """
        values: dict[str, object] = {}
        for name, field in type(self).model_fields.items():
            alias = field.validation_alias
            values[alias if isinstance(alias, str) else name.upper()] = getattr(self, name)
        return values


def load_settings() -> Settings:
    """Settings for an app start: fails fast, with a clear message, when a secret is missing."""
    settings = Settings()
    settings.require_secrets()
    return settings
