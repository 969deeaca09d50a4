"""The generated project's operations layer, run for real on the tiny GGUF.

One project is rendered with a hosted provider's key in `.env` (as a team with a hosted
fallback would have it) and then run on the embedded runner: the eval suite writes its three
reports with plausible numbers, traces hold the GenAI attributes with the token counts `ask`
reported, probes pass, feedback turns into an eval case. The planted key must appear in no
command output (logs on), report, trace file or the answers file. Each test stands alone, so
parallel workers may split the module.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from helpers import render, run
from models import tiny_gguf

if TYPE_CHECKING:
    from pathlib import Path

COMMAND = "my-rag-app"
PLANTED_KEY = "sk-ops-planted-7f3a9c1e5b"  # pragma: allowlist secret
QUESTION = "What port does the staging server use?"
EXIT_GATE = 5
EMAIL = "jane.doe@example.com"
MODEL = "embedded/gemma-3-270m-q4_k_m.gguf"  # the gateway's name for the in-process GGUF


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, env: dict[str, str], model_env: dict[str, str]
) -> Path:
    """The default project, but with the hosted key answered (it goes to .env only), indexed.

    Indexed here, not by a test: parallel workers run the tests of this module in any order.
    """
    path = render(
        tmp_path_factory.mktemp("ops") / COMMAND,
        {"model_runner": "hosted", "hosted_api_key": PLANTED_KEY},
    )
    run(["make", "setup"], path, env)
    run(["uv", "run", "--locked", COMMAND, "ingest"], path, model_env)
    return path


@pytest.fixture(scope="module")
def model_env(env: dict[str, str]) -> dict[str, str]:
    """The embedded runner on the tiny GGUF, with the hosted fallback configured from .env."""
    return {
        **env,
        "MODEL_RUNNER": "embedded",
        "GGUF_MODEL_PATH": str(tiny_gguf()),
        "LLM_THREADS": "2",
        "HOSTED_MODEL": "openai/gpt-4o-mini",
        "HOSTED_FALLBACK": "true",
        "TRACE_CAPTURE_CONTENT": "true",
    }


def app(
    args: list[str], project: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess[str]:
    """Run the project's command (with logs on); its output must never hold the key."""
    result = subprocess.run(
        ["uv", "run", "--locked", COMMAND, "-v", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode in ok, f"{args}: {result.returncode}\n{result.stderr[-4000:]}"
    assert_no_key(result.stdout, result.stderr)
    return result


def assert_no_key(*texts: str) -> None:
    leaks = [text[:200] for text in texts if PLANTED_KEY in text]
    assert leaks == []


@pytest.mark.slow
def test_the_planted_key_is_loaded(project: Path, model_env: dict[str, str]) -> None:
    """Without this, the leak checks below would prove nothing."""
    assert f"HOSTED_API_KEY={PLANTED_KEY}" in (project / ".env").read_text(encoding="utf-8")
    code = (
        "from my_rag_app.settings import Settings; s = Settings(); "
        "print(s.model_runner, s.hosted_api_key is not None, s.hosted_model)"
    )
    result = run(["uv", "run", "--locked", "python", "-c", code], project, model_env)
    assert result.stdout.split() == ["embedded", "True", "openai/gpt-4o-mini"]
    assert_no_key((project / ".copier-answers.yml").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_eval_on_the_tiny_model_writes_three_plausible_reports(
    project: Path, model_env: dict[str, str]
) -> None:
    started = time.perf_counter()
    result = app(["eval"], project, model_env, ok=(0, EXIT_GATE))
    seconds = time.perf_counter() - started
    reports = project / "build" / "evals"
    cases = yaml.safe_load((project / "evals" / "cases.yaml").read_text(encoding="utf-8"))
    data = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    summary = data["summary"]
    assert summary["model"] == MODEL
    assert summary["cases"] == len(cases["cases"])
    assert summary["hit_rate"] > 0
    assert 0 < summary["mrr"] <= 1
    assert summary["latency_p95_ms"] >= summary["latency_p50_ms"] > 0
    assert summary["input_tokens"] > 0
    assert summary["output_tokens"] > 0
    assert summary["classification"]["true_positive"] > 0
    assert summary["scores"]["contains"] > 0
    gate_names = {gate["name"] for gate in data["gates"]}
    assert "min pass_rate" in gate_names
    assert (result.returncode == EXIT_GATE) == (not all(g["ok"] for g in data["gates"]))

    suite = ET.parse(reports / "junit.xml").getroot()  # noqa: S314 - our own file
    case_tests = [t for t in suite.iter("testcase") if t.get("classname") == "evals.cases"]
    assert len(case_tests) == len(cases["cases"])
    failed = {t.get("name") for t in case_tests if t.find("failure") is not None}
    assert failed == {r["id"] for r in data["results"] if not r["passed"]}

    markdown = (reports / "summary.md").read_text(encoding="utf-8")
    assert f"| cases passed | {summary['passed']}/{summary['cases']}" in markdown
    assert "| hit@4 |" in markdown
    page = (reports / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 2
    assert "<script" not in page
    assert not re.search(r"(src|href)=\"https?:", page)
    assert seconds < 900, f"the eval took {seconds:.0f} s"
    print(f"eval of {summary['cases']} cases on the tiny model: {seconds:.1f} s")  # noqa: T201
    assert_no_key(*(path.read_text(encoding="utf-8") for path in reports.iterdir()))


@pytest.mark.slow
def test_traces_hold_genai_attributes_with_the_reported_tokens(
    project: Path, model_env: dict[str, str]
) -> None:
    # Content capture is on: the e-mail address must be redacted from the recorded question
    # (it also makes keyword retrieval find nothing, so this ask calls no model).
    redacted = app(["ask", f"{QUESTION} Reply to {EMAIL}", "--json"], project, model_env)
    redacted_id = json.loads(redacted.stdout)["trace_id"]
    asked = app(["ask", QUESTION, "--json"], project, model_env)
    answer: dict[str, Any] = json.loads(asked.stdout)
    spans = [
        json.loads(line)
        for line in (project / "data" / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    mine = [span for span in spans if span["trace_id"] == answer["trace_id"]]
    names = {span["name"] for span in mine}
    assert {"rag.ask", "rag.retrieve", "rag.generate"} <= names
    [call] = [s for s in mine if s["attributes"].get("gen_ai.operation.name")]
    attributes = call["attributes"]
    assert attributes["gen_ai.operation.name"] == "text_completion"  # a base model
    assert attributes["gen_ai.system"] == "llama_cpp"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.response.model"] == answer["model"]
    assert attributes["gen_ai.usage.input_tokens"] == answer["usage"]["prompt_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] == answer["usage"]["completion_tokens"] > 0
    [root] = [s for s in spans if s["trace_id"] == redacted_id and s["name"] == "rag.ask"]
    assert "staging server" in root["attributes"]["rag.question"]
    assert "[REDACTED]" in root["attributes"]["rag.question"]
    assert EMAIL not in json.dumps(spans)
    assert_no_key((project / "data" / "traces.jsonl").read_text(encoding="utf-8"))
    # The JSON log line of the model call carries the trace id, the model and its version.
    records = [json.loads(line) for line in asked.stderr.splitlines() if line.startswith("{")]
    [logged] = [r for r in records if r.get("model_version")]
    assert logged["trace_id"] == answer["trace_id"]
    assert logged["model"] == MODEL
    assert logged["model_version"] == answer["model"]
    tree = app(["traces", "--trace-id", answer["trace_id"]], project, model_env)
    assert f"trace {answer['trace_id']}" in tree.stdout
    assert f"text_completion {MODEL}" in tree.stdout


@pytest.mark.slow
def test_probes_pass_on_the_tiny_model(project: Path, model_env: dict[str, str]) -> None:
    result = app(["probe", "--json"], project, model_env)
    rows = json.loads(result.stdout)
    assert rows
    assert all(row["ok"] for row in rows), rows


@pytest.mark.slow
def test_feedback_round_trips_into_an_eval_case(project: Path, model_env: dict[str, str]) -> None:
    asked = json.loads(app(["ask", QUESTION, "--json"], project, model_env).stdout)
    app(
        [
            "feedback",
            "add",
            "--trace-id",
            asked["trace_id"],
            "--down",
            "--correction",
            "8443",
            "--question",
            QUESTION,
            "--answer",
            asked["answer"],
            "--source",
            "data/docs/environments.md",
            "--signal",
            "retried",
        ],
        project,
        model_env,
    )
    app(["feedback", "export", "--output", "evals/from-feedback.yaml"], project, model_env)
    exported = yaml.safe_load((project / "evals/from-feedback.yaml").read_text(encoding="utf-8"))
    [case] = [c for c in exported["cases"] if c.get("trace_id") == asked["trace_id"]]
    assert case["question"] == QUESTION
    assert case["expected_facts"] == ["8443"]
    assert case["expected_sources"] == ["data/docs/environments.md"]
    app(
        [
            "eval",
            "--fake",
            "--no-judge",
            "--cases",
            "evals/from-feedback.yaml",
            "--reports",
            "build/evals-feedback",
        ],
        project,
        model_env,
    )
    results = json.loads(
        (project / "build/evals-feedback/results.json").read_text(encoding="utf-8")
    )
    assert [r["id"] for r in results["results"]] == [case["id"]]
    assert results["results"][0]["passed"] is True
    assert_no_key(
        (project / "evals/from-feedback.yaml").read_text(encoding="utf-8"),
        (project / "build/evals-feedback/junit.xml").read_text(encoding="utf-8"),
    )
