"""Eval reports: results.json (everything), summary.md (for a CI summary), junit.xml (for CI
test views) and report.html (one self-contained page: no script, nothing fetched)."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

ROWS = [
    ("hit@k", "hit_rate_lexical", "hit_rate"),
    ("MRR", "mrr_lexical", "mrr"),
]


def write(directory: Path, data: dict[str, Any]) -> None:
    """All four reports into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (directory / "summary.md").write_text(markdown(data), encoding="utf-8")
    (directory / "junit.xml").write_bytes(junit(data))
    (directory / "report.html").write_text(page(data), encoding="utf-8")


def markdown(data: dict[str, Any]) -> str:
    summary, f = data["summary"], data["summary"]["figures"]
    lines = [
        f"## Evals: {summary['passed']}/{summary['cases']} cases passed ({summary['model']})",
        "",
        "| retrieval | lexical | hybrid |",
        "| --- | --- | --- |",
        *(f"| {name} | {f[lex]:.2f} | {f[hyb]:.2f} |" for name, lex, hyb in ROWS),
        "",
        *_followups(f),
        "| figure | value |",
        "| --- | --- |",
        f"| cases passed | {summary['passed']}/{summary['cases']} |",
        *(
            f"| {name} | {value:.2f} |"
            for name, value in f.items()
            if not name.startswith(("hit_rate", "mrr"))
        ),
        "",
        "| gate | result | detail |",
        "| --- | --- | --- |",
        *(
            f"| {g['name']} | {'pass' if g['ok'] else 'FAIL'} | {g['detail']} |"
            for g in data["gates"]
        ),
    ]
    return "\n".join(lines) + "\n"


def _followups(f: dict[str, float]) -> list[str]:
    """The follow-ups' retrieval as asked and as rewritten, when there are follow-ups."""
    if not f.get("followups"):
        return []
    return [
        f"| follow-ups ({f['followups']:.0f}) | as asked | rewritten |",
        "| --- | --- | --- |",
        f"| hit@k | {f['hit_rate_followups_asked']:.2f} | {f['hit_rate_followups']:.2f} |",
        f"| MRR | {f['mrr_followups_asked']:.2f} | {f['mrr_followups']:.2f} |",
        "",
    ]


def junit(data: dict[str, Any]) -> bytes:
    results, checks = data["results"], data["gates"]
    suite = ET.Element(
        "testsuite",
        name="evals",
        tests=str(len(results) + len(checks)),
        failures=str(sum(not r["passed"] for r in results) + sum(not g["ok"] for g in checks)),
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="evals.cases",
            name=result["id"],
            time=f"{result['latency_ms'] / 1000:.3f}",
        )
        if not result["passed"]:
            failure = ET.SubElement(case, "failure", message="; ".join(result["notes"]) or "failed")
            failure.text = f"Q: {result['question']}\nA: {result['answer']}"
    for gate in checks:
        case = ET.SubElement(suite, "testcase", classname="evals.gates", name=gate["name"])
        if not gate["ok"]:
            ET.SubElement(case, "failure", message=gate["detail"])
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def page(data: dict[str, Any]) -> str:
    summary, f = data["summary"], data["summary"]["figures"]
    bars = "".join(
        f'<text x="0" y="{20 + 44 * i}">{name}</text>'
        f'<rect x="60" y="{8 + 44 * i}" width="{300 * f[lex]:.0f}" height="14" fill="#9ca3af"/>'
        f'<rect x="60" y="{24 + 44 * i}" width="{300 * f[hyb]:.0f}" height="14" fill="#2563eb"/>'
        for i, (name, lex, hyb) in enumerate(ROWS)
    )
    rows = "".join(
        f"<tr class={'pass' if r['passed'] else 'fail'}>"
        + "".join(
            f"<td>{html.escape(str(value))}</td>"
            for value in (
                r["id"],
                r["question"],
                r["answer"],
                r["rank"] or "-",
                "; ".join(r["notes"]),
            )
        )
        + "</tr>"
        for r in data["results"]
    )
    title = f"Evals: {summary['passed']}/{summary['cases']} passed · {summary['model']}"
    return (
        "<!doctype html><meta charset=utf-8><title>Evals</title><style>"
        "body{font:14px sans-serif;margin:2em}td,th{border-bottom:1px solid #ddd;padding:4px;"
        "text-align:left}.fail{background:#fee}</style>"
        f"<h1>{html.escape(title)}</h1>"
        f'<svg width="380" height="{44 * len(ROWS) + 8}" role="img" '
        f'aria-label="lexical (grey) against hybrid (blue)">{bars}</svg>'
        "<p>Grey: keywords only. Blue: keywords and vectors.</p>"
        "<table><tr><th>case</th><th>question</th><th>answer</th><th>rank</th><th>notes</th></tr>"
        f"{rows}</table>"
    )
