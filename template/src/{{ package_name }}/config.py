"""Settings, read once at start: the environment wins over `.env`, which wins over secret files.

Secret files are one file per variable in `SECRETS_DIR` (default `/run/secrets`, where Docker
Compose and Kubernetes mount secrets), named like the variable in any case. Settings come in
groups, one per concern; a feature that has settings of its own (the API, tracing, evals)
declares its group in its own module and loads it with `load`. Model deployments and their
knobs live in `llm.yaml`, whose `${VARIABLE:-default}` references resolve from the same sources
(`Settings.environment`). No other module reads the environment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError, problems

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_SECRETS_DIR = Path("/run/secrets")
ENV_FILE = Path(".env")
# Values of variables with these words in their names are secrets: never logged or traced;
# except settings about secrets (where they are kept, whether one is needed).
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|DSN", re.IGNORECASE)
_ABOUT_SECRETS = re.compile(r"_(PATH|FILE|DIR)$|_REQUIRE_KEY$", re.IGNORECASE)
_MIN_SECRET_CHARS = 4


class Group(BaseSettings):
    """Base of every settings group: environment, `.env`, then the secrets directory."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore"
    )


class ModelSettings(Group):
    """Which runner answers, and how patiently (the deployments themselves are in llm.yaml)."""

    model_config = SettingsConfigDict(env_prefix="LLM_")

    runner: str | None = Field(
        default=None, validation_alias=AliasChoices("MODEL_RUNNER", "LLM_RUNNER")
    )
    config: Path = Path("llm.yaml")
    timeout_seconds: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=1, ge=0, le=10)
    max_answer_tokens: int = Field(default=300, ge=16, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)


class RetrievalSettings(Group):
    """Documents, chunks and retrieval."""

    model_config = SettingsConfigDict(env_prefix="RAG_")

    docs_path: Path = Path("data/docs")
    chunk_tokens: int = Field(default=256, ge=32, le=4096)
    chunk_overlap_tokens: int = Field(default=32, ge=0, le=1024)
    max_document_mb: float = Field(default=20.0, gt=0)
    file_seconds: float = Field(default=30.0, gt=0)
    lexical_only: bool = False
    top_k: int = Field(default=4, ge=1, le=50)
    candidates: int = Field(default=20, ge=1, le=500)
    rrf_k: int = Field(default=60, ge=1)
    context_tokens: int = Field(default=1500, ge=64)
    max_question_chars: int = Field(default=2000, ge=16)
    history_turns: int = Field(default=6, ge=0, le=50)
    history_tokens: int = Field(default=1000, ge=0)
    rewrite: bool = True


G = TypeVar("G", bound=Group)


@dataclass(frozen=True)
class Settings:
    """Every group the core needs, and the merged environment llm.yaml resolves against."""

    model: ModelSettings
    retrieval: RetrievalSettings
    secrets_dir: Path | None = None
    environment: Mapping[str, str] = field(default_factory=dict)

    def secret_values(self) -> list[str]:
        """Values that must never appear in output: scrubbed from errors and logs."""
        return [
            value
            for name, value in self.environment.items()
            if _SECRET_NAME.search(name)
            and not _ABOUT_SECRETS.search(name)
            and len(value) >= _MIN_SECRET_CHARS
        ]


def secrets_dir() -> Path | None:
    """`SECRETS_DIR` when set (it must exist), else `/run/secrets` when present."""
    explicit = os.environ.get("SECRETS_DIR", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise ConfigError(f"SECRETS_DIR={explicit} is not a directory: create it or unset it")
        return path
    return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None


def load(group: type[G], directory: Path | None = None) -> G:
    """One settings group, with validation errors as one message naming each variable."""
    try:
        return group(_secrets_dir=directory)
    except ValidationError as exc:
        prefix = group.model_config.get("env_prefix", "")
        raise ConfigError(f"invalid settings: {problems(exc, prefix=prefix, variables=True)}") from None


def environment(directory: Path | None) -> dict[str, str]:
    """The process environment over `.env` over secret files, as one mapping."""
    merged: dict[str, str] = {}
    if directory is not None:
        for path in sorted(directory.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                merged[path.name.upper()] = path.read_text(encoding="utf-8").strip()
    merged.update({k: str(v) for k, v in (_DotEnv().model_extra or {}).items()})
    merged.update(os.environ)
    return merged


class _DotEnv(BaseSettings):
    """Every line of `.env`, declared or not (llm.yaml may refer to any of them)."""

    model_config = SettingsConfigDict(env_file=ENV_FILE, extra="allow", case_sensitive=True)


def load_settings() -> Settings:
    """All core settings; raises `ConfigError` with every problem named."""
    directory = secrets_dir()
    return Settings(
        model=load(ModelSettings, directory),
        retrieval=load(RetrievalSettings, directory),
        secrets_dir=directory,
        environment=environment(directory),
    )
