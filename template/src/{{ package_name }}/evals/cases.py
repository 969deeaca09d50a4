"""Eval cases as a versioned YAML file: what to ask, what a good answer holds, where it is.

A case passes when its answer holds every expected fact (case-insensitive), matches every
pattern, and, when ``label`` is ``unanswerable``, says it could not find the answer. Expected
sources feed the retrieval metrics. Thresholds and the regression budget live in the same
file, so a change of bar is reviewed with the cases it applies to.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..settings import ConfigError  # noqa: TID252

if TYPE_CHECKING:
    from pathlib import Path

Label = Literal["answerable", "unanswerable"]


class EvalCase(BaseModel):
    """One question and what its answer must hold."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,80}$")]
    question: Annotated[str, Field(min_length=1)]
    expected_facts: list[str] = Field(default_factory=list)
    expected_patterns: list[str] = Field(default_factory=list)
    expected_sources: list[str] = Field(default_factory=list)
    reference: str | None = None
    """A reference answer: exact match and semantic similarity compare with it."""
    label: Label | None = None
    trace_id: str | None = None
    """The trace the case came from, when exported from feedback."""

    @field_validator("expected_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return patterns


class Thresholds(BaseModel):
    """The bars an eval run must clear; None means not gated."""

    model_config = ConfigDict(extra="forbid")

    min_pass_rate: float | None = Field(default=None, ge=0, le=1)
    min_hit_rate: float | None = Field(default=None, ge=0, le=1)
    min_mrr: float | None = Field(default=None, ge=0, le=1)
    min_f1: float | None = Field(default=None, ge=0, le=1)
    max_p95_latency_ms: float | None = Field(default=None, gt=0)
    max_regression: float = Field(default=0.0, ge=0, le=1)
    """How far pass rate, hit rate and MRR may fall below the baseline."""


class CasesFile(BaseModel):
    """The whole cases file."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    top_k: int = Field(default=4, ge=1, le=50)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    cases: list[EvalCase]

    @field_validator("cases")
    @classmethod
    def _unique_ids(cls, cases: list[EvalCase]) -> list[EvalCase]:
        seen: set[str] = set()
        for case in cases:
            if case.id in seen:
                raise ValueError(f"duplicate case id {case.id!r}")
            seen.add(case.id)
        return cases


def load_cases(path: Path) -> CasesFile:
    """The cases file, validated; a clear error names the file and the problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the eval cases {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    try:
        return CasesFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None


def dump_cases(cases: CasesFile) -> str:
    """YAML in the cases format; loading it again gives the same cases."""
    data = cases.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    data["cases"] = [
        case.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        for case in cases.cases
    ]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
