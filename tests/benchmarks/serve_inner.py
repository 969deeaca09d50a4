"""Memory of a serving app on a large index: the API with its models, answering questions.

Run by bench.py as ``python serve_inner.py PACKAGE INDEX CHUNKS`` with the project's Python and
the model settings in the environment: a process of its own per index. The app is the real one
(`create_app`, the in-process runner with the chat and embedding models, uvicorn on loopback)
over INDEX, a SQLite index of CHUNKS synthetic chunks with 768-dimension vectors written by
retrieval_inner.py. The test embedding model gives 384 dimensions, so the question's vector is
the corpus's own 768-dimension one (the embedding model is still loaded and called); everything
else is what `serve` runs. Resident memory is read after start-up, after the first answer and
at the end (peak, VmHWM).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import Corpus
from measure import emit, free_port, peak_rss_mb, rss_mb

ASKS = 10


def main() -> None:
    package, index, chunks = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.environ["RAG_INDEX_PATH"] = index
    import httpx  # noqa: PLC0415
    import uvicorn  # noqa: PLC0415

    llm = importlib.import_module(f"{package}.llm")
    api = importlib.import_module(f"{package}.api.app")
    questions = Corpus().questions(chunks, ASKS)
    vectors = {text: vector.tolist() for text, vector in questions}
    model_embed = llm.Gateway.embed

    def embed(self: object, texts: list[str], *, query: bool = False) -> list[list[float]]:
        if query:
            model_embed(self, texts, query=True)  # the model still runs
            return [vectors[text] for text in texts]
        embedded: list[list[float]] = model_embed(self, texts, query=query)
        return embedded

    llm.Gateway.embed = embed
    started_rss = rss_mb()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api.create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    after_start = rss_mb()
    latencies = []
    with httpx.Client(timeout=600) as client:
        for n, (text, _) in enumerate(questions):
            began = time.perf_counter()
            response = client.post(f"http://127.0.0.1:{port}/v1/ask", json={"question": text})
            response.raise_for_status()
            latencies.append(time.perf_counter() - began)
            if n == 0:
                after_first = rss_mb()
            if response.json()["retrieval"]["mode"] != "hybrid":
                raise RuntimeError(f"not hybrid: {response.json()['retrieval']}")
    server.should_exit = True
    thread.join(timeout=30)
    emit(
        {
            "chunks": chunks,
            "index_mb": sum(
                p.stat().st_size
                for p in Path(index).resolve().parent.glob(Path(index).resolve().name + "*")
            )
            / 1e6,
            "python_rss_mb": started_rss,
            "after_start_mb": after_start,
            "after_first_answer_mb": after_first,
            "peak_rss_mb": peak_rss_mb(),
            "first_answer_s": latencies[0],
        }
    )


if __name__ == "__main__":
    main()
