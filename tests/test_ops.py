"""The generated project's operations layer, run for real on the tiny models.

The project is rendered with a hosted provider's key in `.env` (as a team with a hosted fallback
would have it) and runs the in-process runner: the eval suite writes its reports with plausible
numbers (keyword-only and hybrid retrieval side by side), traces hold the GenAI attributes with
the token counts `ask` reported, probes pass, feedback turns into an eval case, and a team that
replaces the sample documents gets from a red eval gate to a green one by the documented path,
with `eval draft` run on the tiny chat model. The planted key appears in no output, report, trace
or answers file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from answers import COMMAND, QUESTION, SOURCE
from helpers import render, run
from models import model_env

if TYPE_CHECKING:
    from collections.abc import Iterator

PLANTED_KEY = "sk-ops-planted-7f3a9c1e5b"  # pragma: allowlist secret
EXIT_GATE = 5
EMAIL = "jane.doe@example.com"
# Three documents of a team's own (an incident process, code review rules, VPN access).
OWN_DOCS = Path(__file__).parent / "fixtures" / "own-docs"


@pytest.fixture(scope="module")
def real(env: dict[str, str]) -> dict[str, str]:
    return {**env, **model_env(), "MODEL_RUNNER": "inprocess", "TRACE_CAPTURE_CONTENT": "true"}


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, env: dict[str, str], real: dict[str, str]
) -> Path:
    path = render(
        tmp_path_factory.mktemp("ops") / COMMAND,
        {"runners": ["inprocess", "hosted"], "hosted_api_key": PLANTED_KEY},
    )
    run(["make", "setup"], path, env)
    run(["uv", "run", "--locked", COMMAND, "ingest"], path, real)
    return path


def app(
    args: list[str], project: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess[str]:
    """The project's command with logs on; its output must never hold the key."""
    result = subprocess.run(
        ["uv", "run", "--locked", COMMAND, "-v", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode in ok, f"{args}: {result.returncode}\n{result.stderr[-4000:]}"
    assert PLANTED_KEY not in result.stdout + result.stderr
    return result


@pytest.mark.slow
def test_the_planted_key_is_loaded_and_kept_out_of_the_answers_file(project: Path) -> None:
    assert f"HOSTED_API_KEY={PLANTED_KEY}" in (project / ".env").read_text(encoding="utf-8")
    assert (project / ".env").stat().st_mode & 0o777 == 0o600
    assert PLANTED_KEY not in (project / ".copier-answers.yml").read_text(encoding="utf-8")


@pytest.mark.slow
def test_evals_on_the_tiny_models_report_keywords_against_hybrid(
    project: Path, real: dict[str, str]
) -> None:
    result = app(["eval"], project, real, ok=(0, EXIT_GATE))
    reports = project / "build" / "evals"
    data = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    figures: dict[str, float] = data["summary"]["figures"]
    cases = yaml.safe_load((project / "evals" / "cases.yaml").read_text(encoding="utf-8"))["cases"]
    assert data["summary"]["cases"] == len(cases)
    assert data["summary"]["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert 0 < figures["hit_rate_lexical"] <= 1
    assert figures["hit_rate"] >= figures["hit_rate_lexical"]
    assert 0 < figures["mrr"] <= 1
    assert figures["latency_p95_ms"] >= figures["latency_p50_ms"] > 0
    assert figures["tokens"] > 0
    answered = [r for r in data["results"] if r["answered"]]
    assert answered
    assert all(r["judged"] for r in answered)  # the tiny model judged every answer it gave
    assert 0 <= figures["faithfulness"] <= 1
    assert figures["judge_no_verdict"] <= len(answered)
    assert (result.returncode == EXIT_GATE) == (not all(g["ok"] for g in data["gates"]))
    suite = ET.parse(reports / "junit.xml").getroot()  # noqa: S314 - our own file
    assert len([t for t in suite.iter("testcase") if t.get("classname") == "evals.cases"]) == len(
        cases
    )
    summary = (reports / "summary.md").read_text(encoding="utf-8")
    assert "| hit@k |" in summary
    for path in reports.iterdir():
        assert PLANTED_KEY not in path.read_text(encoding="utf-8"), path
    print(  # noqa: T201 - the figures for the record
        "evals on the tiny models: "
        + ", ".join(f"{name} {value:.2f}" for name, value in figures.items())
    )


@pytest.mark.slow
def test_traces_hold_genai_attributes_with_the_reported_tokens(
    project: Path, real: dict[str, str]
) -> None:
    redacted = app(["ask", f"{QUESTION} Reply to {EMAIL}", "--json"], project, real)
    redacted_id = json.loads(redacted.stdout)["trace_id"]
    asked = app(["ask", QUESTION, "--json"], project, real)
    answer: dict[str, Any] = json.loads(asked.stdout)
    text = (project / "data" / "traces.jsonl").read_text(encoding="utf-8")
    spans = [json.loads(line) for line in text.splitlines()]
    mine = [span for span in spans if span["trace_id"] == answer["trace_id"]]
    assert {"rag.ask", "rag.retrieve", "rag.embeddings", "rag.chat"} <= {s["name"] for s in mine}
    [chat] = [s for s in mine if s["name"] == "rag.chat"]
    attributes = chat["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.system"] == "inprocess"
    assert attributes["gen_ai.usage.output_tokens"] == answer["usage"]["completion_tokens"] > 0
    assert attributes["gen_ai.usage.input_tokens"] == answer["usage"]["prompt_tokens"] > 0
    assert attributes["gen_ai.server.time_to_first_token"] > 0
    [root] = [s for s in spans if s["trace_id"] == redacted_id and s["name"] == "rag.ask"]
    assert "[REDACTED]" in json.dumps(root)
    assert EMAIL not in text
    assert PLANTED_KEY not in text
    logged = [json.loads(line) for line in asked.stderr.splitlines() if line.startswith("{")]
    assert any(record.get("trace_id") == answer["trace_id"] for record in logged), asked.stderr[
        -2000:
    ]
    tree = app(["traces", "--trace-id", answer["trace_id"]], project, real)
    assert f"trace {answer['trace_id']}" in tree.stdout
    assert "rag.chat" in tree.stdout


@pytest.mark.slow
def test_probes_pass_on_the_tiny_model(project: Path, real: dict[str, str]) -> None:
    result = app(["probe"], project, real)
    assert "FAIL" not in result.stdout


@pytest.mark.slow
def test_feedback_round_trips_into_an_eval_case(project: Path, real: dict[str, str]) -> None:
    asked = json.loads(app(["ask", QUESTION, "--json"], project, real).stdout)
    app(
        ["feedback", "add", "--trace-id", asked["trace_id"], "--down", "--correction", "8443",
         "--question", QUESTION, "--source", SOURCE],
        project,
        real,
    )  # fmt: skip
    app(["feedback", "export", "--output", "evals/from-feedback.yaml"], project, real)
    exported = yaml.safe_load((project / "evals/from-feedback.yaml").read_text(encoding="utf-8"))
    [case] = [c for c in exported["cases"] if c.get("trace_id") == asked["trace_id"]]
    assert case["expected_facts"] == ["8443"]
    assert case["expected_sources"] == [SOURCE]
    fake = app(
        [
            "eval",
            "--fake",
            "--cases",
            "evals/from-feedback.yaml",
            "--reports",
            "build/evals-feedback",
        ],
        project,
        real,
        ok=(0, EXIT_GATE),
    )
    results = json.loads(
        (project / "build/evals-feedback/results.json").read_text(encoding="utf-8")
    )
    assert [r["id"] for r in results["results"]] == [case["id"]]
    assert results["results"][0]["passed"] is True, fake.stdout


@pytest.fixture
def own_documents(project: Path) -> Iterator[Path]:
    """The project with its samples replaced by a team's own documents; put back afterwards."""
    saved = project.parent / "saved"
    shutil.copytree(project / "data" / "docs", saved / "docs")
    shutil.copytree(project / "evals", saved / "evals")
    shutil.rmtree(project / "data" / "docs")
    shutil.copytree(OWN_DOCS, project / "data" / "docs")
    try:
        yield project
    finally:
        for name, target in (("docs", project / "data" / "docs"), ("evals", project / "evals")):
            shutil.rmtree(target)
            shutil.copytree(saved / name, target)
        shutil.rmtree(saved)


def make(target: str, project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", target], cwd=project, env=env, capture_output=True, text=True, timeout=900,
        check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_own_documents_go_from_a_red_gate_to_green_by_the_documented_path(
    own_documents: Path, env: dict[str, str], real: dict[str, str]
) -> None:
    project = own_documents
    red = make("eval-fake", project, env)
    assert red.returncode != 0
    said = " ".join((red.stdout + red.stderr).split())
    assert (
        "error: 15 of 21 cases name sources not in data/docs (deployments.md, environments.md, "
        f"expenses.txt, ...): draft cases for your documents with `uv run {COMMAND} eval draft`, "
        "review them into evals/cases.yaml, then `make eval-baseline`"
    ) in said, said[-3000:]
    # The project's own tests keep their copy of the samples: only the eval gate turned red.
    run(["uv", "run", "--locked", "pytest", "-q", "tests/test_cli.py"], project, env)
    # The tiny real chat model drafts: weak, so most drafts are dropped, and it says why.
    model = app(["eval", "draft", "--count", "3", "--output", "build/drafts-smollm2.yaml"],
                project, real)  # fmt: skip
    drafted = " ".join(model.stderr.split())
    print(f"eval draft on the tiny model: {drafted[-400:]}")  # noqa: T201 - for the record
    suite = yaml.safe_load((project / "build/drafts-smollm2.yaml").read_text(encoding="utf-8"))
    drafts = [case for case in suite["cases"] if case["id"].startswith("draft-")]
    counted = re.search(r"(\d+) cases drafted from (\d+) passages \((\d+) dropped: ", drafted)
    assert counted, drafted
    kept, tried, dropped = (int(n) for n in counted.groups())
    assert kept == len(drafts) == tried - dropped
    for case in drafts:
        assert case["expected_facts"][0].lower() in " ".join(case["passage"].split()).lower()
        assert (OWN_DOCS / case["expected_sources"][0].removeprefix("data/docs/")).is_file()
    # The documented path, offline: drafts, review (taken as they are), baseline, green.
    app(["eval", "draft", "--fake"], project, real)
    (project / "evals/drafts.yaml").replace(project / "evals/cases.yaml")
    assert make("eval-baseline", project, env).returncode == 0
    green = make("eval-fake", project, env)
    assert green.returncode == 0, green.stdout + green.stderr
    data = json.loads((project / "build/evals/results.json").read_text(encoding="utf-8"))
    sourced = [r for r in data["results"] if r["id"].startswith("draft-")]
    assert len(sourced) >= len(list(OWN_DOCS.iterdir()))
    assert all(r["passed"] and r["rank"] == 1 for r in sourced), sourced
    baseline = json.loads((project / "evals/baseline.json").read_text(encoding="utf-8"))
    assert baseline["fake-extractive"] == {k: data["summary"]["figures"][k] for k in
                                           ("pass_rate", "hit_rate", "mrr")}  # fmt: skip
