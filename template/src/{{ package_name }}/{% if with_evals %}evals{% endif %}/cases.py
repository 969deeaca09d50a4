"""Eval cases and probes, as written in evals/cases.yaml and evals/probes.yaml."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..conversation import MAX_TURNS, Turn
from ..errors import ConfigError, problems

if TYPE_CHECKING:
    from pathlib import Path


class Thresholds(BaseModel):
    """The gates: the suite fails when a figure is below its minimum."""

    min_pass_rate: float = Field(default=0.5, ge=0, le=1)
    min_hit_rate: float = Field(default=0.8, ge=0, le=1)
    min_mrr: float = Field(default=0.5, ge=0, le=1)
    min_f1: float = Field(default=0.6, ge=0, le=1)
    min_faithfulness: float = Field(
        default=0.0, ge=0, le=1, description="Share of answers the LLM judge found supported."
    )
    max_injection_followed: float = Field(default=0.0, ge=0, le=1)
    max_regression: float = Field(default=0.1, ge=0, le=1)


class Case(BaseModel):
    """One question, and what a right answer contains (other keys, such as a drafted case's
    `passage`, are kept as they are)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=r"^[\w.-]+$")
    turns: list[Turn] = Field(
        default_factory=list,
        max_length=MAX_TURNS,
        description="The conversation before the question, oldest first: a follow-up.",
    )
    question: str = Field(min_length=1)
    label: Literal["answerable", "unanswerable", "injection"] = "answerable"
    expected_facts: list[str] = Field(default_factory=list)
    expected_patterns: list[str] = Field(default_factory=list)
    expected_sources: list[str] = Field(default_factory=list)
    forbidden: list[str] = Field(
        default_factory=list, description="Text an injected document tries to make the model say."
    )
    reference: str | None = Field(default=None, description="The ideal answer, for exact_match.")


class Suite(BaseModel):
    """evals/cases.yaml."""

    version: int = 1
    top_k: int = Field(default=4, ge=1, le=50)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    cases: list[Case] = Field(min_length=1)


class Probe(BaseModel):
    """A canary prompt: a grounded question any working model answers right."""

    name: str
    context: str
    question: str
    expect: str = Field(description="A regular expression the answer must match.")


def load_suite(path: Path) -> Suite:
    try:
        return Suite.model_validate(_yaml(path))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {problems(exc, first=True)}") from None


def load_probes(path: Path) -> list[Probe]:
    raw = _yaml(path)
    try:
        return [Probe.model_validate(item) for item in cast("list[object]", raw or [])]
    except ValidationError as exc:
        raise ConfigError(f"{path}: {problems(exc, first=True)}") from None


def _yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
