"""Generation through `ask` (API and CLI) against raw llama-cpp-python, inside a generated project.

Run by bench.py as ``python gen_inner.py PACKAGE PROJECT ROUNDS`` with the project's Python,
in the project folder, its index built and the model settings in the environment. The raw
reference loads the same GGUF with the same options as the app (the app's own loader builds the
`Llama`: model, context, batch, threads) and streams a chat completion of the very messages the
app sends (captured from the app's own prompt code); temperature 0 on both sides, so both
produce the same tokens. Prompt caches match too: each `Llama` sees the same questions in the
same order. Tokens/s is the decode rate seen by the consumer: (tokens - 1) / (last - first).

``python gen_inner.py raw-once`` is the raw reference of a CLI run: a fresh process that loads the
model and streams one answer, as `ask --stream` does.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import emit, free_port, in_turn, start, stop

QUESTIONS = [
    "Explain in detail everything the documents say about deployments, step by step.",
    "Describe the on-call process in detail, with every rule it has.",
    "Describe in detail how visitors are welcomed and what they must do.",
]
WARM_UP = "What port does the staging server use?"
FIRST = "When is the deploy freeze?"
FOLLOW_UP = "What is still allowed then?"


def decode_rate(tokens: int, first: float, last: float) -> float | None:
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else None


class Recorder:
    """A chat model that records the messages the app would send, and answers nothing."""

    def __init__(self, name: str, generation: Any) -> None:  # noqa: ANN401 - the project's type
        self.chat_model = name
        self.generation = generation
        self.messages: list[dict[str, str]] = []

    def stream(self, messages: Any, **_: Any) -> Any:  # noqa: ANN401 - the project's types
        self.messages = [dict(m) for m in messages]
        yield self.generation(text="-", model=self.chat_model)


def raw_stream(llama: Any, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:  # noqa: ANN401
    started = time.perf_counter()
    first = last = 0.0
    parts: list[str] = []
    for part in llama.create_chat_completion(
        messages=messages, max_tokens=max_tokens, temperature=0.0, stream=True
    ):
        text = part["choices"][0]["delta"].get("content")
        if text:
            last = time.perf_counter()
            first = first or last
            parts.append(text)
    return {
        "ttft_ms": (first - started) * 1000,
        "tokens": len(parts),
        "tok_s": decode_rate(len(parts), first, last),
        "text": "".join(parts).strip(),
    }


def api_stream(
    client: Any,  # noqa: ANN401 - httpx
    url: str,
    question: str,
    history: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    first = last = 0.0
    answer: dict[str, Any] = {}
    event = ""
    body = {"question": question, "history": history or []}
    with client.stream("POST", url, json=body, headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "token":
                last = time.perf_counter()
                first = first or last
            elif line.startswith("data:") and event == "answer":
                answer = json.loads(line.split(":", 1)[1])
    tokens = int(answer["usage"]["completion_tokens"])
    return {
        "ttft_ms": (first - started) * 1000,
        "tokens": tokens,
        "tok_s": decode_rate(tokens, first, last),
        "text": answer["answer"],
        "rewritten": answer.get("rewritten_question"),
    }


def timed_output(command: list[str], env: dict[str, str], text: str) -> dict[str, Any]:
    """Run a command that streams `text` to stdout: when its first and last bytes arrived."""
    target = re.sub(r"\s+", "", text)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout is not None
    seen = b""
    first = last = 0.0
    while chunk := os.read(process.stdout.fileno(), 65536):
        now = time.perf_counter()
        seen += chunk
        first = first or now
        if not last and target and target in re.sub(r"\s+", "", seen.decode(errors="replace")):
            last = now
    _, errors = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed: {errors.decode()[-2000:]}")
    return {"first_s": first - started, "last_s": last - started if last else None}


def raw_once() -> None:
    """A fresh process: llama-cpp-python alone (none of the app imported), the model loaded with
    the app's options and CPU kernels (GGML_BACKEND_PATH), one answer streamed to stdout."""
    options_json, messages_json, max_tokens = sys.argv[3:6]
    from llama_cpp import LLAMA_POOLING_TYPE_UNSPECIFIED, Llama  # noqa: PLC0415

    options = json.loads(options_json)
    llama = Llama(
        model_path=options["path"],
        n_ctx=options["context_tokens"],
        n_batch=512,
        n_ubatch=512,
        n_threads=options["threads"],
        n_gpu_layers=options["gpu_layers"],
        pooling_type=LLAMA_POOLING_TYPE_UNSPECIFIED,
        verbose=False,
    )
    for part in llama.create_chat_completion(
        messages=json.loads(messages_json), max_tokens=int(max_tokens), temperature=0.0, stream=True
    ):
        text = part["choices"][0]["delta"].get("content")
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()


def main() -> None:  # noqa: PLR0915 - one measurement, read top to bottom
    if sys.argv[1] == "raw-once":
        raw_once()
        return
    package, project, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    import httpx  # noqa: PLC0415 - the project's dependency

    config = importlib.import_module(f"{package}.config")
    llm = importlib.import_module(f"{package}.llm")
    store_module = importlib.import_module(f"{package}.store")
    retrieval = importlib.import_module(f"{package}.retrieval")
    rag_module = importlib.import_module(f"{package}.rag")
    inprocess = importlib.import_module(f"{package}.llm.runners.inprocess")

    settings = config.load_settings()
    gateway = llm.Gateway(settings)
    store = store_module.open_store(settings)
    recorder = Recorder(gateway.chat_model, llm.Generation)
    rag = rag_module.Rag(
        retrieval.Retriever(store, gateway, settings.retrieval), recorder, settings.retrieval
    )
    prompts = {}
    for question in [WARM_UP, *QUESTIONS]:
        recorder.messages = []
        rag.ask(question)
        if not recorder.messages:
            raise RuntimeError(f"nothing retrieved for {question!r}: is the index built?")
        prompts[question] = recorder.messages
    store.close()
    max_tokens = settings.model.max_answer_tokens
    params = gateway.chat[0].litellm_params
    options = inprocess.LoadOptions.of(params, embedding=False)
    llama, _ = inprocess.load(options, str(params.get("cpu_backend") or "auto"))

    port = free_port()
    log = project / "build" / "bench-serve.log"
    log.parent.mkdir(exist_ok=True)
    command = [str(Path(sys.executable).parent / project_command(project)), "serve"]
    server = start(
        [*command, "--port", str(port)],
        log,
        dict(os.environ),
        f"http://127.0.0.1:{port}/healthz",
    )
    url = f"http://127.0.0.1:{port}/v1/ask"
    raw: list[dict[str, Any]] = []
    api: list[dict[str, Any]] = []
    followups: list[dict[str, Any]] = []

    def measure_raw(question: str) -> None:
        raw.append({"q": question, **raw_stream(llama, prompts[question], max_tokens)})

    def measure_api(question: str) -> None:
        api.append({"q": question, **api_stream(client, url, question)})

    try:
        with httpx.Client(timeout=600) as client:
            raw_stream(llama, prompts[WARM_UP], max_tokens)
            api_stream(client, url, WARM_UP)
            for round_number in range(rounds):
                for question in QUESTIONS:
                    in_turn(
                        round_number,
                        functools.partial(measure_raw, question),
                        functools.partial(measure_api, question),
                    )
            # A follow-up against a first question: what rewriting it costs.
            for _ in range(rounds):
                first_question = api_stream(client, url, FIRST)
                history = [
                    {"role": "user", "content": FIRST},
                    {"role": "assistant", "content": first_question["text"]},
                ]
                follow_up = api_stream(client, url, FOLLOW_UP, history)
                followups.append({"first": first_question, "followup": follow_up})
    finally:
        stop(server)

    # The CLI: a process per answer (import, model load, retrieval, generation), against a
    # fresh raw process that loads the same model and streams the same answer.
    question = QUESTIONS[0]
    text = next(item["text"] for item in api if item["q"] == question)
    tokens = next(item["tokens"] for item in api if item["q"] == question)
    cli_command = [command[0], "ask", "--stream", question]
    raw_command = [
        sys.executable, __file__, "raw-once", package,
        json.dumps(options.__dict__), json.dumps(prompts[question]), str(max_tokens),
    ]  # fmt: skip
    # The raw process loads the CPU kernels the app chose, by itself (no app code imported).
    kernels = inprocess.cpu_library(
        Path(importlib.import_module("llama_cpp").__file__ or "").parent / "lib",
        str(params.get("cpu_backend") or "auto"),
    )
    raw_env = {**os.environ, "GGML_BACKEND_PATH": str(kernels)}
    cli: list[dict[str, Any]] = []
    raw_cli: list[dict[str, Any]] = []
    for round_number in range(max(rounds // 2, 2)):
        in_turn(
            round_number,
            lambda: cli.append(timed_output(cli_command, dict(os.environ), text)),
            lambda: raw_cli.append(timed_output(raw_command, raw_env, text)),
        )
    same_text = all(
        a["text"] == r["text"] for a, r in zip(api, raw, strict=True) if a["q"] == r["q"]
    )
    emit(
        {
            "model": Path(str(params["model_path"])).name,
            "max_tokens": max_tokens,
            "threads": options.threads,
            "raw": raw,
            "api": api,
            "cli": cli,
            "raw_cli": raw_cli,
            "cli_tokens": tokens,
            "same_text": same_text,
            "followups": followups,
        }
    )


def project_command(project: Path) -> str:
    """The project's console script, from its pyproject.toml."""
    text = (project / "pyproject.toml").read_text()
    match = re.search(r'^([A-Za-z0-9_.-]+) = "[A-Za-z0-9_]+\.cli:app"$', text, re.MULTILINE)
    if match is None:
        raise RuntimeError("no console script in pyproject.toml")
    return match[1]


if __name__ == "__main__":
    main()
