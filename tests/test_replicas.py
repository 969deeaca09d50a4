"""Replicas behind the gateway, for real: two llama.cpp servers for one alias.

A project with the llama.cpp server runner is rendered, and its `llm.yaml` lists a second `chat`
deployment. Two `python -m llama_cpp.server` processes (llama-cpp-python's server, the project's
dev dependency) serve the tiny chat model on loopback, and the project's API asks them questions
over HTTP, retrieval by keywords (RAG_LEXICAL_ONLY: no embedding server, so every model call is
a chat call to one of the two). Questions come until both servers have answered (the Router
picks at random); then one server is killed, and every later question is still answered, with
its sources, by the other, until the app's log shows that the Router tried the dead one and set
it aside. `/metrics` says which server answered each call, and the servers' own access logs
agree.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from answers import COMMAND, QUESTION, SOURCE
from helpers import render, run
from models import chat_gguf

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MAX_BEFORE = 16  # questions at most until both servers have answered (1 in 2**15 to fail)
MIN_BEFORE = 4
AFTER = 6  # questions at least once one server is gone
MAX_AFTER = 20  # at most, until the Router has tried the dead one (1 in 2**20 not to)
STARTUP_SECONDS = 120
_CPU_LIBRARY = "import sys; sys.path.insert(0, 'tests'); import llama_server as s; "
_CPU_LIBRARY += "print(s.cpu_library() or '')"
_ACCESS = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" 200')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def call(base: str, method: str, path: str, body: object = None) -> tuple[int, str]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        data = None if body is None else json.dumps(body)
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def wait_for(base: str, path: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args!r} exited:\n{log.read_text()[-3000:]}")
        try:
            if call(base, "GET", path)[0] == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{base}{path} did not answer within {STARTUP_SECONDS} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    """A llama.cpp-runner project whose llm.yaml has a second chat deployment (replica)."""
    path = render(tmp_path_factory.mktemp("replicas") / COMMAND, {"runners": ["llamacpp"]})
    run(["make", "setup"], path, env)
    config = yaml.safe_load((path / "llm.yaml").read_text(encoding="utf-8"))
    [chat] = [d for d in config["model_list"] if d["model_name"] == "chat"]
    replica = json.loads(json.dumps(chat))
    replica["litellm_params"]["api_base"] = "${LLAMACPP_REPLICA_URL}/v1"
    config["model_list"].insert(config["model_list"].index(chat) + 1, replica)
    (path / "llm.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


class Server:
    """One `python -m llama_cpp.server` on a free loopback port, its access log in a file."""

    def __init__(self, project: Path, env: dict[str, str], name: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = project / "build" / f"{name}.log"
        self.log.parent.mkdir(exist_ok=True)
        command = [
            str(project / ".venv/bin/python"), "-m", "llama_cpp.server",
            "--model", str(chat_gguf()), "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", "2048", "--n_threads", "1",  # one thread each: 2 shared cores, 3 processes
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def answered(self) -> int:
        """Chat completions the server's own access log says it served."""
        return len(_ACCESS.findall(self.log.read_text(encoding="utf-8", errors="replace")))


@pytest.fixture(scope="module")
def stack(project: Path, env: dict[str, str]) -> Iterator[tuple[Server, Server, str, Path]]:
    """Two chat servers (ingest done by keywords) and the project's API on loopback."""
    library = run([str(project / ".venv/bin/python"), "-c", _CPU_LIBRARY], project, env)
    server_env = {**env, "PYTHONUNBUFFERED": "1"}  # the access log survives a kill
    if library.stdout.strip():
        server_env["GGML_BACKEND_PATH"] = library.stdout.strip()
    servers = (Server(project, server_env, "replica-a"), Server(project, server_env, "replica-b"))
    app_port = free_port()
    app_env = {
        **env,
        "MODEL_RUNNER": "llamacpp",
        "LLAMACPP_BASE_URL": servers[0].base,
        "LLAMACPP_REPLICA_URL": servers[1].base,
        "RAG_LEXICAL_ONLY": "true",
        "LLM_MAX_ANSWER_TOKENS": "16",
        "API_RATE_PER_MINUTE": "1000",
    }
    app = None
    try:
        run([str(project / ".venv/bin" / COMMAND), "ingest"], project, app_env)
        for server in servers:
            wait_for(server.base, "/v1/models", server.process, server.log)
        log = project / "build" / "serve.log"
        with log.open("wb") as handle:
            app = subprocess.Popen(
                [str(project / ".venv/bin" / COMMAND), "serve", "--port", str(app_port)],
                cwd=project, env=app_env, stdout=handle, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(f"http://127.0.0.1:{app_port}", "/healthz", app, log)
        yield servers[0], servers[1], f"http://127.0.0.1:{app_port}", log
    finally:
        for process in (app, *(s.process for s in servers)):
            if process is not None:
                stop(process)


def calls_by_deployment(base: str) -> dict[str, int]:
    """`llm_deployment_calls_total{operation="chat"}` by deployment, from /metrics."""
    status, text = call(base, "GET", "/metrics")
    assert status == 200, text
    found: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("llm_deployment_calls_total{") and 'operation="chat"' in line:
            deployment = re.search(r'deployment="([^"]+)"', line)
            assert deployment, line
            found[deployment[1]] = int(float(line.rsplit(" ", 1)[1]))
    return found


def ask(base: str) -> dict[str, Any]:
    status, text = call(base, "POST", "/v1/ask", {"question": QUESTION})
    assert status == 200, text
    answer: dict[str, Any] = json.loads(text)
    assert answer["answer"].strip(), answer
    assert answer["sources"], answer
    assert answer["sources"][0]["path"] == SOURCE, answer
    assert answer["usage"]["completion_tokens"] > 0, answer
    return answer


@pytest.mark.slow
def test_two_servers_share_the_questions_and_one_that_dies_is_routed_around(
    stack: tuple[Server, Server, str, Path],
) -> None:
    first, second, base, serve_log = stack
    names = {server: f"127.0.0.1:{server.port}" for server in (first, second)}
    started = time.monotonic()
    before = 0
    while before < MAX_BEFORE:
        ask(base)
        before += 1
        counts = calls_by_deployment(base)
        if before >= MIN_BEFORE and all(counts.get(name) for name in names.values()):
            break
    counts = calls_by_deployment(base)
    assert set(counts) == set(names.values()), counts  # both answered, nothing else did
    assert sum(counts.values()) == before
    assert {s: s.answered() for s in names} == {s: counts[n] for s, n in names.items()}

    first.process.kill()  # a crash: no goodbye to anyone
    first.process.wait()
    killed_at = time.monotonic()
    # Until the Router has tried the dead server (it picks at random) and set it aside: the
    # app's log names it. Every question is answered all the same.
    failed = f"deployment {names[first]} failed"
    after = 0
    while after < AFTER or failed not in serve_log.read_text(encoding="utf-8"):
        assert after < MAX_AFTER, f"the Router never tried {names[first]} in {after} questions"
        ask(base)
        after += 1
    final = calls_by_deployment(base)
    assert final[names[first]] == counts[names[first]]  # nothing more from the dead one
    assert final[names[second]] == counts[names[second]] + after
    assert second.answered() == final[names[second]]
    took = time.monotonic() - started
    print(  # noqa: T201 - the figures for the record
        f"replicas: {before} questions before the kill ({counts[names[first]]} answered by "
        f"{names[first]}, {counts[names[second]]} by {names[second]}), {after} after it, all "
        f"answered with sources by {names[second]} ({time.monotonic() - killed_at:.1f} s), "
        f"the dead one tried and set aside; questions took {took:.1f} s"
    )
