"""The API under concurrent users against the llama.cpp server it calls, called directly.

Run by bench.py as ``python load_inner.py PACKAGE PROJECT USERS...`` with the project's Python,
the model settings in the environment. Two `llama_cpp.server` processes (llama-cpp-python's
server, the one installable here; the compose stack runs llama.cpp's own `llama-server`) serve
the chat model and the embedding model on loopback, as the compose stack's two servers do. The
app (`serve`, MODEL_RUNNER=llamacpp) answers from the sample documents.

llama-cpp-python's server has no parallel slots: it runs one request at a time (a global lock)
and by default cuts a streaming answer short when another request waits (`interrupt_requests`),
which is switched off here so that every answer is whole. Both sides therefore queue on the
same single slot; what differs is what the app adds: the question's embedding (a call to the
embedding server), retrieval, the prompt, LiteLLM and HTTP.

For each number of users, in alternating order: every user sends its requests one after the
other, as fast as answers come; the direct side sends the chat completion the app would send
for the same question (the same messages, captured from the app's own prompt code), streamed
as the app streams it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_inner import Recorder, project_command
from measure import cpu_library, emit, free_port, start, stop, summary

QUESTIONS = [
    "What port does the staging server use?",
    "When is the daily standup?",
    "Who approves expenses?",
    "How do I get access to production?",
    "What must visitors do when they arrive?",
    "How are deployments rolled back?",
    "Who is on call at night?",
    "Which tools does the team use for chat?",
]
REQUESTS = {1: 8, 4: 16, 16: 32}


def server(model: str, log: Path, *extra: str) -> tuple[Any, str]:
    port = free_port()
    library = cpu_library()
    env = {**os.environ, **({"GGML_BACKEND_PATH": library} if library else {})}
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
        "--port", str(port), "--n_threads", os.environ.get("LLM_THREADS", "2"),
        "--interrupt_requests", "False", *extra,
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return start(command, log, env, f"{url}/v1/models"), url


def run_users(users: int, total: int, call: Any) -> dict[str, Any]:  # noqa: ANN401
    """`users` threads share `total` requests; answers/s over the wall time, latencies."""
    import httpx  # noqa: PLC0415

    latencies: list[float] = []
    tokens: list[int] = []
    lock = threading.Lock()
    turns = iter(range(total))

    def user() -> None:
        with httpx.Client(timeout=900) as client:
            while True:
                with lock:
                    turn = next(turns, None)
                if turn is None:
                    return
                started = time.perf_counter()
                produced = call(client, QUESTIONS[turn % len(QUESTIONS)])
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
                    tokens.append(produced)

    threads = [threading.Thread(target=user) for _ in range(users)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "users": users,
        "requests": len(latencies),
        "answers_s": len(latencies) / wall,
        "latency_ms": summary(latencies),
        "mean_tokens": sum(tokens) / max(len(tokens), 1),
    }


def main() -> None:  # noqa: C901, PLR0915 - one measurement, read top to bottom
    package, project = sys.argv[1], Path(sys.argv[2])
    users_list = [int(u) for u in sys.argv[3:]]
    logs = project / "build"
    logs.mkdir(exist_ok=True)
    chat, chat_url = server(os.environ["CHAT_MODEL_PATH"], logs / "bench-llama-chat.log")
    embed, embed_url = server(
        os.environ["EMBEDDING_MODEL_PATH"], logs / "bench-llama-embed.log",
        "--embedding", "true", "--n_ctx", "512", "--n_batch", "512", "--n_ubatch", "512",
    )  # fmt: skip
    scratch = tempfile.mkdtemp(prefix="bench-load-")
    os.environ.update(
        {
            "MODEL_RUNNER": "llamacpp",
            "LLAMACPP_BASE_URL": chat_url,
            "LLAMACPP_EMBEDDING_BASE_URL": embed_url,
            "RAG_INDEX_PATH": f"{scratch}/index.sqlite3",
        }
    )
    app_server = None
    try:
        config = importlib.import_module(f"{package}.config")
        llm = importlib.import_module(f"{package}.llm")
        stores = importlib.import_module(f"{package}.store")
        retrieval = importlib.import_module(f"{package}.retrieval")
        rag_module = importlib.import_module(f"{package}.rag")
        pipeline = importlib.import_module(f"{package}.ingest.pipeline")
        settings = config.load_settings()
        gateway = llm.Gateway(settings)
        store = stores.open_store(settings)
        pipeline.Ingestor.from_settings(settings, store, gateway).run(project / "data" / "docs")
        recorder = Recorder(gateway.chat_model, llm.Generation)
        rag = rag_module.Rag(
            retrieval.Retriever(store, gateway, settings.retrieval), recorder, settings.retrieval
        )
        prompts = {}
        for question in QUESTIONS:
            recorder.messages = []
            rag.ask(question)
            prompts[question] = recorder.messages
        store.close()
        max_tokens = settings.model.max_answer_tokens
        model_name = gateway.chat[0].litellm_params["model"].split("/", 1)[1]

        port = free_port()
        command = str(Path(sys.executable).parent / project_command(project))
        app_server = start(
            [command, "serve", "--port", str(port)],
            logs / "bench-load-serve.log",
            dict(os.environ),
            f"http://127.0.0.1:{port}/healthz",
        )
        app_url = f"http://127.0.0.1:{port}/v1/ask"

        def via_app(client: Any, question: str) -> int:  # noqa: ANN401
            response = client.post(app_url, json={"question": question})
            response.raise_for_status()
            return int(response.json()["usage"]["completion_tokens"])

        def direct(client: Any, question: str) -> int:  # noqa: ANN401
            if not prompts[question]:  # nothing retrieved: the app answers without the model
                return 0
            body = {
                "model": model_name, "messages": prompts[question], "max_tokens": max_tokens,
                "temperature": 0.0, "stream": True, "stream_options": {"include_usage": True},
            }  # fmt: skip
            produced = 0
            with client.stream("POST", f"{chat_url}/v1/chat/completions", json=body) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if line.startswith("data:") and "[DONE]" not in line:
                        chunk = json.loads(line[5:])
                        choices = chunk.get("choices") or []
                        if choices and choices[0].get("delta", {}).get("content"):
                            produced += 1
            return produced

        import httpx  # noqa: PLC0415

        with httpx.Client(timeout=900) as client:  # warm both paths
            via_app(client, QUESTIONS[0])
            direct(client, QUESTIONS[0])
        results = []
        for n, users in enumerate(users_list):
            total = REQUESTS.get(users, users * 2)
            pair = [("direct", direct), ("app", via_app)]
            for name, call in pair if n % 2 == 0 else pair[::-1]:
                results.append({"side": name, **run_users(users, total, call)})
    finally:
        if app_server is not None:
            stop(app_server)
        stop(chat)
        stop(embed)
    emit({"max_tokens": max_tokens, "results": results})


if __name__ == "__main__":
    main()
