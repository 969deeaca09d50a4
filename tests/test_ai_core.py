"""The default project answers a question about its sample documents, for real.

The model is the real Gemma 3 270M GGUF from PyPI (see tests/models.py); nothing is faked
between the generated CLI and llama.cpp.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

from answers import COMMAND, QUESTION, assert_cited_answer
from helpers import render, run
from models import tiny_gguf

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    """The default project, set up and with its sample documents ingested."""
    path = render(tmp_path_factory.mktemp("ai") / "my-rag-app", {})
    run(["make", "setup"], path, env)
    return path


@pytest.fixture(scope="module")
def model_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "GGUF_MODEL_PATH": str(tiny_gguf()), "LLM_THREADS": "2"}


def ask(project: Path, env: dict[str, str], question: str) -> dict[str, Any]:
    result = run(["uv", "run", "--locked", COMMAND, "ask", question, "--json"], project, env)
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


@pytest.mark.slow
def test_embedded_runner_answers_with_a_citation(project: Path, model_env: dict[str, str]) -> None:
    env = {**model_env, "MODEL_RUNNER": "embedded"}
    ingest = run(["uv", "run", "--locked", COMMAND, "ingest", "--json"], project, env)
    report = json.loads(ingest.stdout)
    assert report, ingest.stdout
    answer = ask(project, env, QUESTION)
    assert_cited_answer(answer)
    again = run(["uv", "run", "--locked", COMMAND, "ingest", "--json"], project, env)
    assert json.loads(again.stdout) != {}, "re-ingest reports what it skipped"


@pytest.mark.slow
def test_generated_tests_pass_on_the_real_model(project: Path, model_env: dict[str, str]) -> None:
    result = run(
        [
            "uv",
            "run",
            "--locked",
            "pytest",
            "-m",
            "integration",
            "-p",
            "no:cacheprovider",
            "--no-cov",
        ],
        project,
        model_env,
    )
    assert " passed" in result.stdout
    assert " skipped" not in result.stdout, result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_llamacpp_runner_answers_through_the_server(
    project: Path, model_env: dict[str, str]
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            "uv",
            "run",
            "--locked",
            "python",
            "-m",
            "llama_cpp.server",
            "--model",
            model_env["GGUF_MODEL_PATH"],
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            "2",
        ],
        cwd=project,
        env=model_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, "llama_cpp.server exited"
                assert time.monotonic() < deadline, "llama_cpp.server did not come up"
                time.sleep(0.5)
        env = {
            **model_env,
            "MODEL_RUNNER": "llamacpp",
            "LLAMACPP_BASE_URL": f"http://127.0.0.1:{port}",
        }
        run(["uv", "run", "--locked", COMMAND, "ingest"], project, env)
        assert_cited_answer(ask(project, env, QUESTION))
    finally:
        server.terminate()
        server.wait(timeout=30)
