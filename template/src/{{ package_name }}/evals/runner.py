"""Run the cases through the app, score each answer, and decide whether the run passes.

The app is asked exactly as a user would ask it (``Rag.ask``), so the answer, its sources,
tokens, latency and trace id are the real ones. A case that errors fails with the error as
its reason and the run goes on.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ..runners.errors import GatewayError  # noqa: TID252
from ..settings import ConfigError  # noqa: TID252
from ..tracing import get_tracer  # noqa: TID252
from . import scorers
from .metrics import classify, mean, percentile, retrieval_scores

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ..gateway import Gateway  # noqa: TID252
    from ..rag import Answer  # noqa: TID252
    from .cases import CasesFile, EvalCase, Thresholds

REGRESSION_METRICS = ("pass_rate", "hit_rate", "mrr")


class CaseResult(BaseModel):
    """One case: the answer, every score, and why it failed if it did."""

    id: str
    question: str
    answer: str
    label: str | None = None
    answered: bool
    passed: bool
    failures: list[str] = Field(default_factory=list)
    scores: dict[str, float | None] = Field(default_factory=dict)
    notes: dict[str, str] = Field(default_factory=dict)
    hit: float | None = None
    reciprocal_rank: float | None = None
    recall: float | None = None
    sources: list[str] = Field(default_factory=list)
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    model: str | None = None
    trace_id: str | None = None


class ClassificationSummary(BaseModel):
    """The confusion matrix of labelled cases (positive class: answerable)."""

    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int
    accuracy: float
    precision: float
    recall: float
    f1: float


class Summary(BaseModel):
    """A run in numbers."""

    model: str
    cases: int
    passed: int
    pass_rate: float
    k: int
    hit_rate: float | None = None
    mrr: float | None = None
    recall_at_k: float | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    scorer_notes: dict[str, str] = Field(default_factory=dict)
    latency_p50_ms: float
    latency_p95_ms: float
    latency_mean_ms: float
    input_tokens: int
    output_tokens: int
    cost: float
    classification: ClassificationSummary | None = None


class Gate(BaseModel):
    """One threshold or regression check."""

    name: str
    ok: bool
    detail: str


class EvalRun(BaseModel):
    """Everything a report needs."""

    summary: Summary
    results: list[CaseResult]
    gates: list[Gate] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(gate.ok for gate in self.gates)


def run_cases(
    cases: CasesFile,
    ask: Callable[[str, int], Answer],
    gateway: Gateway,
    *,
    judge: bool = True,
    prices: tuple[float, float] = (0.0, 0.0),
    progress: Callable[[EvalCase], None] | None = None,
) -> EvalRun:
    """Ask every case, score it, and summarise; gates are added by `apply_gates`."""
    results = []
    for case in cases.cases:
        with get_tracer().start_as_current_span("eval.case") as span:
            span.set_attribute("eval.case_id", case.id)
            result = score_case(case, ask, gateway, k=cases.top_k, judge=judge, prices=prices)
            span.set_attribute("eval.passed", result.passed)
        results.append(result)
        if progress:
            progress(case)
    return EvalRun(
        summary=summarise(results, gateway.chat_model_name, cases.top_k), results=results
    )


def score_case(
    case: EvalCase,
    ask: Callable[[str, int], Answer],
    gateway: Gateway,
    *,
    k: int,
    judge: bool,
    prices: tuple[float, float],
) -> CaseResult:
    """Ask one case and score the answer with every scorer that applies."""
    try:
        answer = ask(case.question, k)
    except GatewayError as exc:
        return CaseResult(
            id=case.id,
            question=case.question,
            answer="",
            label=case.label,
            answered=False,
            passed=False,
            failures=[f"model error: {exc}"],
        )
    text = answer.answer
    answered = answer.model is not None and not scorers.says_not_found(text)
    paths = [source.path for source in answer.sources]
    checks = {
        "exact": scorers.exact(text, case.reference),
        "contains": scorers.contains(text, case.expected_facts),
        "regex": scorers.regex(text, case.expected_patterns),
        "semantic": scorers.semantic(text, case.reference, gateway),
    }
    if judge and answered:
        context = [source.snippet for source in answer.sources]
        checks["judge"] = scorers.judge(case.question, text, context, gateway)
    failures = _failures(case, text, answered=answered)
    result = CaseResult(
        id=case.id,
        question=case.question,
        answer=text,
        label=case.label,
        answered=answered,
        passed=not failures,
        failures=failures,
        scores={name: score.value for name, score in checks.items()},
        notes={name: score.note for name, score in checks.items() if score.note},
        sources=paths,
        latency_ms=answer.latency_ms,
        input_tokens=answer.usage.prompt_tokens,
        output_tokens=answer.usage.completion_tokens,
        cost=(answer.usage.prompt_tokens * prices[0] + answer.usage.completion_tokens * prices[1])
        / 1_000_000,
        model=answer.model,
        trace_id=answer.trace_id,
    )
    if case.expected_sources:
        retrieval = retrieval_scores(paths, case.expected_sources, k)
        result.hit = retrieval.hit
        result.reciprocal_rank = retrieval.reciprocal_rank
        result.recall = retrieval.recall
    return result


def _failures(case: EvalCase, text: str, *, answered: bool) -> list[str]:
    failures = []
    missing = [fact for fact in case.expected_facts if fact.lower() not in text.lower()]
    if missing:
        failures.append(f"missing facts: {', '.join(missing)}")
    unmatched = [p for p in case.expected_patterns if not re.search(p, text)]
    if unmatched:
        failures.append(f"patterns not matched: {', '.join(unmatched)}")
    if case.label == "unanswerable" and answered:
        failures.append("answered a question the documents do not cover")
    if case.label == "answerable" and not answered:
        failures.append("declined a question the documents answer")
    return failures


def summarise(results: list[CaseResult], model: str, k: int) -> Summary:
    """Aggregate the case results of a run."""
    latencies = [r.latency_ms for r in results if r.model is not None or r.answer]
    retrieved = [r for r in results if r.hit is not None]
    names = sorted({name for r in results for name in r.scores})
    scores = {
        name: mean([v for r in results if (v := r.scores.get(name)) is not None]) for name in names
    }
    notes = {
        name: f"{len(skipped)} of {len(results)} cases not scored ({skipped[0]})"
        for name in names
        if (skipped := [r.notes[name] for r in results if name in r.notes])
    }
    labelled = [(r.label == "answerable", r.answered) for r in results if r.label]
    classification = None
    if labelled:
        matrix = classify(labelled)
        classification = ClassificationSummary(
            true_positive=matrix.true_positive,
            false_positive=matrix.false_positive,
            false_negative=matrix.false_negative,
            true_negative=matrix.true_negative,
            accuracy=matrix.accuracy,
            precision=matrix.precision,
            recall=matrix.recall,
            f1=matrix.f1,
        )
    passed = sum(r.passed for r in results)
    return Summary(
        model=model,
        cases=len(results),
        passed=passed,
        pass_rate=passed / len(results) if results else 0.0,
        k=k,
        hit_rate=mean([r.hit for r in retrieved if r.hit is not None]),
        mrr=mean([r.reciprocal_rank for r in retrieved if r.reciprocal_rank is not None]),
        recall_at_k=mean([r.recall for r in retrieved if r.recall is not None]),
        scores=scores,
        scorer_notes=notes,
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        latency_mean_ms=mean(latencies) or 0.0,
        input_tokens=sum(r.input_tokens for r in results),
        output_tokens=sum(r.output_tokens for r in results),
        cost=sum(r.cost for r in results),
        classification=classification,
    )


def apply_gates(run: EvalRun, thresholds: Thresholds, baseline: dict[str, float] | None) -> None:
    """Check the thresholds, and the regression budget against the baseline when there is one."""
    summary = run.summary
    f1 = summary.classification.f1 if summary.classification else None
    minimums = {
        "pass_rate": (thresholds.min_pass_rate, summary.pass_rate),
        "hit_rate": (thresholds.min_hit_rate, summary.hit_rate),
        "mrr": (thresholds.min_mrr, summary.mrr),
        "f1": (thresholds.min_f1, f1),
    }
    gates = []
    for name, (bar, value) in minimums.items():
        if bar is None:
            continue
        ok = value is not None and value >= bar
        gates.append(Gate(name=f"min {name}", ok=ok, detail=f"{_fmt(value)} (at least {bar})"))
    if thresholds.max_p95_latency_ms is not None:
        ok = summary.latency_p95_ms <= thresholds.max_p95_latency_ms
        detail = f"{summary.latency_p95_ms:.0f} ms (at most {thresholds.max_p95_latency_ms:.0f})"
        gates.append(Gate(name="max p95 latency", ok=ok, detail=detail))
    if baseline is not None:
        for name in REGRESSION_METRICS:
            value, before = getattr(summary, name), baseline.get(name)
            if before is None or value is None:
                continue
            ok = value >= before - thresholds.max_regression - 1e-9
            detail = (
                f"{_fmt(value)} vs baseline {_fmt(before)} (budget {thresholds.max_regression})"
            )
            gates.append(Gate(name=f"no regression in {name}", ok=ok, detail=detail))
    run.gates = gates


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def load_baseline(path: Path, model: str) -> dict[str, float] | None:
    """The baseline figures recorded for ``model``, or None when there are none."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    figures = data.get("models", {}).get(model)
    return {k: float(v) for k, v in figures.items() if v is not None} if figures else None


def save_baseline(path: Path, summary: Summary) -> None:
    """Record this run's figures as the baseline for its model (other models are kept)."""
    data: dict[str, dict[str, dict[str, float | None]]] = {"models": {}}
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("models", {})[summary.model] = {
        name: getattr(summary, name) for name in REGRESSION_METRICS
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
