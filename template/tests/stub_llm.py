"""A stand-in model server for the fast tests: OpenAI's chat and embeddings API on loopback.

The app reaches it through LiteLLM exactly as it reaches a llama.cpp server or a provider, so
the tests run the app's own code for real, in seconds, without a model. Answers are
deterministic: the first sentence of source [1], cited (a follow-up to rewrite: the previous
question and the follow-up in one). Embeddings are bags of hashed words, so
texts that share words are similar. It records what it was sent, and can be made to fail.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIMENSIONS = 64
_SOURCE = re.compile(r'<source id="(\d+)" title="[^"]*">\n(.*?)\n</source>', re.DOTALL)


def embed(text: str) -> list[float]:
    """A unit vector of hashed word counts (stable across processes, unlike `hash`)."""
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0  # noqa: S324
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def reply(messages: list[dict[str, str]]) -> str:
    """The first sentence of source [1], cited; or a refusal when there is no source. As an eval
    judge: "yes" when the answer (without its citations) is in the passages."""
    if messages and "VERDICT" in messages[0]["content"]:
        passages, _, answer = messages[-1]["content"].partition("\n\nAnswer: ")
        claim = re.sub(r"\s*\[\d+\]", "", answer).strip()
        supported = claim in passages or "could not find" in claim
        return f"VERDICT: {'yes' if supported else 'no'}. Checked against the passages."
    if messages and "follow-up question" in messages[0]["content"]:
        # A rewrite: the previous question and the follow-up, in one question.
        conversation, _, follow_up = messages[-1]["content"].rpartition("\n\nFollow-up: ")
        previous = [line[6:] for line in conversation.splitlines() if line.startswith("User: ")]
        return f"{previous[-1].rstrip('?')}: {follow_up}" if previous else follow_up
    found = _SOURCE.findall(messages[-1]["content"]) if messages else []
    if not found:
        return "I could not find this in the documents."
    number, text = found[0]
    return re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0] + f" [{number}]"


class _Handler(BaseHTTPRequestHandler):
    """OpenAI's chat and embeddings endpoints, answered from the stub's state."""

    stub: StubLLM

    def log_message(self, *_: object) -> None:
        pass

    def send(self, status: int, body: object, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path in {"/health", "/v1/models"}:
            self.send(200, {"status": "ok", "data": [{"id": "stub"}]})
        else:
            self.send(404, {"error": "not found"})

    def do_POST(self) -> None:
        body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.stub.fail_with is not None:
            self.send(self.stub.fail_with, {"error": {"message": self.stub.fail_body or "failed"}})
        elif self.path.endswith("/embeddings"):
            self.embeddings(body)
        elif self.path.endswith("/chat/completions"):
            self.stub.chats.append(body["messages"])
            self.chat(body)
        else:
            self.send(404, {"error": "not found"})

    def embeddings(self, body: dict[str, Any]) -> None:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.stub.embedded.extend(texts)
        data = [
            {"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(texts)
        ]
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        self.send(200, {"object": "list", "data": data, "model": body["model"], "usage": usage})

    def chat(self, body: dict[str, Any]) -> None:
        text = reply(body["messages"])
        words = len(text.split())
        usage = {"prompt_tokens": 100, "completion_tokens": words, "total_tokens": 100 + words}
        base = {"id": "stub-1", "created": 0, "model": "stub-model"}
        if not body.get("stream"):
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            self.send(
                200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
            return
        chunk = {**base, "object": "chat.completion.chunk"}
        events = [
            {**chunk, "choices": [{"index": 0, "delta": {"content": piece}}]}
            for piece in re.findall(r"\S+\s*", text)
        ]
        events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        events.append({**chunk, "choices": [], "usage": usage})
        payload = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        self.send(200, payload.encode(), "text/event-stream")


@dataclass
class StubLLM:
    """The server's state: what it was asked, and how it should fail (if at all)."""

    chats: list[list[dict[str, str]]] = field(default_factory=list)
    embedded: list[str] = field(default_factory=list)
    fail_with: int | None = None
    fail_body: str = ""
    url: str = ""
    server: ThreadingHTTPServer | None = None

    def start(self) -> StubLLM:
        handler = type("Handler", (_Handler,), {"stub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def llm_yaml(url: str, *, key: str = "stub-key") -> str:
    """An llm.yaml whose runner `stub` is this server (chat and embeddings)."""
    return f"""model_list:
  - model_name: chat
    litellm_params: {{model: openai/stub-chat, api_base: "{url}/v1", api_key: "{key}"}}
    model_info: {{runner: stub}}
  - model_name: embed
    litellm_params: {{model: openai/stub-embed, api_base: "{url}/v1", api_key: "{key}"}}
    model_info:
      {{runner: stub, query_prefix: "query: ", document_prefix: "passage: ", min_similarity: 0.5}}
router_settings: {{}}
"""
