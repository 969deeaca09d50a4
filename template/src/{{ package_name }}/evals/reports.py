"""Reports of a run: a Markdown summary, JUnit XML for CI, a self-contained HTML page, JSON.

The HTML page has no script and loads nothing: its charts are inline SVG, so it can be opened
from a CI artifact or an air-gapped laptop alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

if TYPE_CHECKING:
    from pathlib import Path

    from .runner import CaseResult, EvalRun, Summary


@dataclass(frozen=True)
class ReportPaths:
    """Where one run's reports were written."""

    markdown: Path
    junit: Path
    html: Path
    json: Path


def write_reports(run: EvalRun, directory: Path) -> ReportPaths:
    """Write every report into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(
        markdown=directory / "summary.md",
        junit=directory / "junit.xml",
        html=directory / "report.html",
        json=directory / "results.json",
    )
    paths.markdown.write_text(markdown(run), encoding="utf-8")
    junit(run).write(str(paths.junit), pretty=True)
    paths.html.write_text(html(run), encoding="utf-8")
    paths.json.write_text(run.model_dump_json(indent=2), encoding="utf-8")
    return paths


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def figures(summary: Summary) -> list[tuple[str, str]]:
    """The headline figures, as (name, formatted value), shared by every report."""
    k = summary.k
    rows = [
        ("model", summary.model),
        ("cases passed", f"{summary.passed}/{summary.cases} ({_pct(summary.pass_rate)})"),
        (f"hit@{k}", _pct(summary.hit_rate)),
        ("MRR", _num(summary.mrr)),
        (f"recall@{k}", _pct(summary.recall_at_k)),
    ]
    rows += [(f"score: {name}", _num(value)) for name, value in summary.scores.items()]
    rows += [
        ("latency p50", f"{summary.latency_p50_ms:.0f} ms"),
        ("latency p95", f"{summary.latency_p95_ms:.0f} ms"),
        ("tokens in / out", f"{summary.input_tokens} / {summary.output_tokens}"),
        ("cost", f"{summary.cost:.6f}"),
    ]
    if summary.classification:
        c = summary.classification
        rows += [
            ("accuracy", _pct(c.accuracy)),
            ("precision", _pct(c.precision)),
            ("recall", _pct(c.recall)),
            ("F1", _num(c.f1)),
        ]
    return rows


def markdown(run: EvalRun) -> str:
    """A summary for a pull request or a CI job page."""
    summary = run.summary
    verdict = "passed" if run.ok else "FAILED"
    lines = [f"# Eval {verdict}: {summary.passed}/{summary.cases} cases", ""]
    lines += ["| metric | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in figures(summary)]
    if summary.classification:
        c = summary.classification
        lines += [
            "",
            "## Confusion matrix (positive: answerable)",
            "",
            "| | answered | declined |",
            "| --- | --- | --- |",
            f"| answerable | {c.true_positive} | {c.false_negative} |",
            f"| unanswerable | {c.false_positive} | {c.true_negative} |",
        ]
    if run.gates:
        lines += ["", "## Gates", "", "| gate | result | detail |", "| --- | --- | --- |"]
        lines += [f"| {g.name} | {'ok' if g.ok else 'FAILED'} | {g.detail} |" for g in run.gates]
    if summary.scorer_notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {name}: {note}" for name, note in summary.scorer_notes.items()]
    failed = [r for r in run.results if not r.passed]
    if failed:
        lines += ["", "## Failed cases", ""]
        lines += [f"- `{r.id}`: {'; '.join(r.failures)}" for r in failed]
    return "\n".join(lines) + "\n"


def junit(run: EvalRun) -> JUnitXml:
    """One test case per eval case, plus one per gate; failures carry the reasons."""
    suite = TestSuite("evals")
    for result in run.results:
        case = TestCase(result.id, classname="evals.cases", time=result.latency_ms / 1000)
        if not result.passed:
            case.result = [Failure("; ".join(result.failures))]
        suite.add_testcase(case)
    for gate in run.gates:
        case = TestCase(gate.name, classname="evals.gates")
        if not gate.ok:
            case.result = [Failure(gate.detail)]
        suite.add_testcase(case)
    if not run.gates:
        case = TestCase("gates", classname="evals.gates")
        case.result = [Skipped("no thresholds configured")]
        suite.add_testcase(case)
    xml = JUnitXml("evals")
    xml.add_testsuite(suite)
    xml.update_statistics()  # type: ignore[no-untyped-call]
    return xml


def bar_chart(title: str, bars: list[tuple[str, float]], unit: str, maximum: float) -> str:
    """A horizontal bar chart as inline SVG."""
    row, label_width, width = 22, 190, 320
    height = row * len(bars) + 30
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + width + 90}" '
            f'height="{height}" role="img" aria-label="{escape(title)}">'
        ),
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>',
    ]
    for index, (label, value) in enumerate(bars):
        y = 24 + index * row
        length = 0 if maximum <= 0 else max(1.0, width * min(value, maximum) / maximum)
        parts += [
            f'<text x="0" y="{y + 13}" font-size="12">{escape(label[:28])}</text>',
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="16" fill="#4e79a7"/>',
            (
                f'<text x="{label_width + length + 4:.1f}" y="{y + 13}" font-size="12">'
                f"{value:.{0 if unit == 'ms' else 2}f}{escape(unit)}</text>"
            ),
        ]
    parts.append("</svg>")
    return "".join(parts)


def _case_row(result: CaseResult) -> str:
    status = "pass" if result.passed else "fail"
    reasons = escape("; ".join(result.failures)) or "&nbsp;"
    return (
        f'<tr class="{status}"><td>{escape(result.id)}</td><td>{status}</td>'
        f"<td>{escape(result.question)}</td><td>{escape(result.answer)}</td>"
        f"<td>{reasons}</td><td>{result.latency_ms:.0f}</td>"
        f"<td>{result.input_tokens}/{result.output_tokens}</td></tr>"
    )


def html(run: EvalRun) -> str:
    """A self-contained page: figures, charts, gates and every case."""
    summary = run.summary
    quality = [
        (name, value)
        for name, value in [
            ("pass rate", summary.pass_rate),
            (f"hit@{summary.k}", summary.hit_rate),
            ("MRR", summary.mrr),
            (f"recall@{summary.k}", summary.recall_at_k),
            *[(f"score: {n}", v) for n, v in summary.scores.items()],
        ]
        if value is not None
    ]
    latencies = [(r.id, r.latency_ms) for r in run.results]
    charts = bar_chart("Quality (0 to 1)", quality, "", 1.0) + bar_chart(
        "Latency per case", latencies, "ms", max([v for _, v in latencies] or [0.0])
    )
    figure_rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>"
        for name, value in figures(summary)
    )
    gate_rows = "".join(
        f'<tr class="{"pass" if g.ok else "fail"}"><td>{escape(g.name)}</td>'
        f"<td>{'ok' if g.ok else 'FAILED'}</td><td>{escape(g.detail)}</td></tr>"
        for g in run.gates
    )
    matrix = ""
    if summary.classification:
        c = summary.classification
        matrix = (
            "<h2>Confusion matrix</h2><table><tr><th></th><th>answered</th><th>declined</th>"
            f"</tr><tr><th>answerable</th><td>{c.true_positive}</td><td>{c.false_negative}</td>"
            f"</tr><tr><th>unanswerable</th><td>{c.false_positive}</td>"
            f"<td>{c.true_negative}</td></tr></table>"
        )
    verdict = "passed" if run.ok else "FAILED"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Eval {verdict}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;"
        "padding:.3rem .6rem;text-align:left;vertical-align:top}"
        "tr.fail td{background:#fde2e2}tr.pass td:nth-child(2){color:#2a7a2a}"
        "</style></head><body>"
        f"<h1>Eval {verdict}: {summary.passed}/{summary.cases} cases</h1>"
        f"<table>{figure_rows}</table>{charts}{matrix}"
        f"<h2>Gates</h2><table>{gate_rows or '<tr><td>no gates</td></tr>'}</table>"
        "<h2>Cases</h2><table><tr><th>id</th><th>result</th><th>question</th><th>answer</th>"
        "<th>why</th><th>ms</th><th>tokens in/out</th></tr>"
        + "".join(_case_row(r) for r in run.results)
        + "</table></body></html>\n"
    )
