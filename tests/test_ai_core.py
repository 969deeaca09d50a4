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
import zipfile
from typing import TYPE_CHECKING, Any

import pytest

import wheelhouse
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


CPU_LIBRARY = "from my_rag_app.runners import gguf; print(gguf.cpu_backend_library())"


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
    # The portable wheel loads the CPU library GGML_BACKEND_PATH names (the app's own choice).
    library = run(["uv", "run", "--locked", "python", "-c", CPU_LIBRARY], project, model_env)
    server_env = {**model_env, "GGML_BACKEND_PATH": library.stdout.strip()}
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
        env=server_env,
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


# Generate with the wheel as the app loads it (runners/gguf.py picks the CPU variant).
GENERATE = """
import json, sys
from my_rag_app.runners import gguf
variant = gguf.load_backends()
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
def test_the_wheel_generates_on_the_tiny_model(
    project: Path, model_env: dict[str, str], forced: str
) -> None:
    """The best variant for this CPU, the baseline x86-64 one (any old CPU) and AVX2."""
    env = {**model_env, "LLM_CPU_BACKEND": forced}
    script = ["uv", "run", "--locked", "python", "-c", GENERATE, model_env["GGUF_MODEL_PATH"]]
    result = json.loads(run(script, project, env).stdout.strip().splitlines()[-1])
    assert result["tokens"] > 0, result
    assert result["text"].strip(), result
    if forced:
        assert result["variant"] == forced
    else:
        # auto never picks the AMX build, which crashed (SIGILL) on VMs that advertise AMX
        assert result["variant"] not in {"", "sapphirerapids"}, result
