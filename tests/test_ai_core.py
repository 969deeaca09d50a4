"""The default project answers a question about its sample documents, for real, and the
llama-cpp-python wheel it runs on is portable.

The models are real (tests/models.py: SmolLM2-135M-Instruct and all-MiniLM-L6-v2 from PyPI);
nothing is faked between the generated CLI and llama.cpp.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from typing import TYPE_CHECKING, Any

import pytest

import wheelhouse
from answers import COMMAND, QUESTION, SOURCE, assert_cited_answer
from helpers import render, run
from models import model_env

if TYPE_CHECKING:
    from pathlib import Path
    from subprocess import CompletedProcess


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    """The default project, set up."""
    path = render(tmp_path_factory.mktemp("ai") / "my-rag-app", {})
    run(["make", "setup"], path, env)
    return path


@pytest.fixture(scope="module")
def real(env: dict[str, str]) -> dict[str, str]:
    return {**env, **model_env()}


def cli(project: Path, env: dict[str, str], *args: str) -> str:
    return run(["uv", "run", "--locked", COMMAND, *args], project, env).stdout


@pytest.mark.slow
def test_the_default_project_answers_with_a_citation(project: Path, real: dict[str, str]) -> None:
    report = json.loads(cli(project, real, "ingest", "--json"))
    assert report["mode"] == "hybrid"
    assert report["chunks_embedded"] == report["chunks"] > 0
    answer: dict[str, Any] = json.loads(cli(project, real, "ask", QUESTION, "--json"))
    assert_cited_answer(answer)
    assert answer["retrieval"] == {"mode": "hybrid", "reason": ""}
    again = json.loads(cli(project, real, "ingest", "--json"))
    assert again["indexed"] == 0
    assert again["unchanged"] == report["files"]
    streamed = cli(project, real, "ask", QUESTION, "--stream")
    assert SOURCE in streamed


@pytest.mark.slow
def test_keyword_only_indexing_is_a_choice_that_says_so(
    project: Path, real: dict[str, str]
) -> None:
    lexical = {**real, "RAG_LEXICAL_ONLY": "true", "RAG_INDEX_PATH": "data/lexical.sqlite3"}
    report = json.loads(cli(project, lexical, "ingest", "--json"))
    assert report["mode"] == "lexical"
    assert report["chunks_embedded"] == 0
    answer = json.loads(cli(project, lexical, "ask", QUESTION, "--json"))
    assert answer["retrieval"]["mode"] == "lexical"
    assert "RAG_LEXICAL_ONLY" in answer["retrieval"]["reason"]
    broken = {
        **real,
        "EMBEDDING_MODEL_PATH": str(project / "README.md"),
        "RAG_INDEX_PATH": "data/x.sqlite3",
    }
    failed = run_failing(project, broken, "ingest")
    assert failed.returncode == 6
    assert "RAG_LEXICAL_ONLY" in failed.stderr
    assert "README.md" in failed.stderr


def run_failing(project: Path, env: dict[str, str], *args: str) -> CompletedProcess[str]:
    return subprocess.run(
        ["uv", "run", "--locked", COMMAND, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


# Generate with the wheel as the app loads it (runners/inprocess.py picks the CPU variant).
GENERATE = """
import json, sys
from my_rag_app.runners import inprocess
variant = inprocess.load_backends(sys.argv[2] or "auto")
from llama_cpp import Llama
llama = Llama(sys.argv[1], n_ctx=256, n_threads=2, verbose=False)
out = llama.create_completion("The capital of France is", max_tokens=8, temperature=0)
print(json.dumps({"variant": variant, "tokens": out["usage"]["completion_tokens"],
                  "text": out["choices"][0]["text"]}))
"""


def test_the_wheel_is_portable() -> None:
    """No -march=native build: one CPU library per instruction set, chosen at run time."""
    built = wheelhouse.wheel()
    assert built is not None, "run `make wheels`"
    assert "-DGGML_NATIVE=OFF" in wheelhouse.cmake_args()
    with zipfile.ZipFile(built) as archive:
        variants = {
            name.rsplit("/", 1)[-1].removeprefix("libggml-cpu-").removesuffix(".so")
            for name in archive.namelist()
            if name.startswith("llama_cpp/lib/libggml-cpu-")
        }
    assert {"x64", "sse42", "haswell", "skylakex", "icelake", "alderlake"} <= variants


@pytest.mark.slow
@pytest.mark.parametrize("forced", ["", "x64", "haswell"], ids=["auto", "x64", "haswell"])
def test_the_wheel_generates_on_each_cpu_variant(
    project: Path, real: dict[str, str], forced: str
) -> None:
    """The best variant for this CPU, the baseline x86-64 one (any old CPU) and AVX2."""
    script = ["uv", "run", "--locked", "python", "-c", GENERATE, real["CHAT_MODEL_PATH"], forced]
    result = json.loads(run(script, project, real).stdout.strip().splitlines()[-1])
    assert result["tokens"] > 0, result
    assert result["text"].strip(), result
    if forced:
        assert result["variant"] == forced
    else:
        # auto never picks the AMX build, which crashed (SIGILL) on VMs that advertise AMX
        assert result["variant"] not in {"", "sapphirerapids"}, result
