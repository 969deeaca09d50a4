"""Test stand-in for llama.cpp's `llama-server`: llama-cpp-python's OpenAI-compatible server.

Used only by the container tests, which cannot pull ghcr.io/ggml-org/llama.cpp. It takes the same
configuration as the real image (the LLAMA_ARG_* variables set in compose.llamacpp.yaml: the
chat server, and the embeddings server with LLAMA_ARG_EMBEDDINGS) and answers the same probe
(GET /health, 200 once the model is loaded), so the stack runs unchanged: only the image name
differs. What it lacks from llama-server (/props, /slots, ...) makes the
app fall back exactly as it would with any llama-cpp-python server.
"""

import ctypes
import os
from collections.abc import Callable
from pathlib import Path

import llama_cpp.llama_cpp as native
import uvicorn
from llama_cpp.server.app import create_app
from llama_cpp.server.settings import ModelSettings, ServerSettings


def load_cpu_backend() -> None:
    """The portable wheel loads no CPU backend by itself: load the best one for this CPU.

    As the generated app does (llm/runners/gguf.py), minus the AMX variant that crashes on VMs.
    """
    lib = native._lib  # libllama; its handle also resolves libggml's symbols
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    if lib.ggml_backend_reg_count():
        return
    scores = {}
    for path in Path(native.__file__).parent.joinpath("lib").glob("libggml-cpu-*.so"):
        if "sapphirerapids" not in path.name:
            score = ctypes.CDLL(str(path)).ggml_backend_score
            score.restype = ctypes.c_int
            scores[path] = score()
    lib.ggml_backend_load.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_load(str(max(scores, key=scores.__getitem__)).encode())


load_cpu_backend()
env = os.environ
host = env.get("LLAMA_ARG_HOST", "0.0.0.0")  # noqa: S104 - a server inside a container
port = int(env.get("LLAMA_ARG_PORT", "8080"))


def flag(value: str) -> bool:
    """llama-server's boolean variables: 1/true/on/enabled."""
    return value.strip().lower() in {"1", "true", "on", "enabled", "yes"}


# LLAMA_ARG_* variable -> llama-cpp-python setting, for those set (else its defaults apply).
SETTINGS: dict[str, tuple[str, Callable[[str], object]]] = {
    "LLAMA_ARG_MODEL": ("model", str),
    "LLAMA_ARG_ALIAS": ("model_alias", str),
    "LLAMA_ARG_CTX_SIZE": ("n_ctx", int),
    "LLAMA_ARG_BATCH": ("n_batch", int),
    "LLAMA_ARG_UBATCH": ("n_ubatch", int),
    "LLAMA_ARG_N_GPU_LAYERS": ("n_gpu_layers", int),
    "LLAMA_ARG_THREADS": ("n_threads", int),
    # An embeddings server (compose.llamacpp.yaml's llamacpp-embed): /v1/embeddings.
    "LLAMA_ARG_EMBEDDINGS": ("embedding", flag),
}
# llama-cpp-python's server has no pooling setting: the model's own applies (the test
# embedding model, all-MiniLM-L6-v2, is written with mean pooling, as llamacpp-embed asks).
if env.get("LLAMA_ARG_POOLING", "mean") != "mean":
    raise SystemExit("the stand-in serves mean pooling only (the test model's own)")
# llama-server uses every core by default; llama-cpp-python only half of them.
threads = os.cpu_count() or 1
values: dict[str, object] = {"n_threads": threads, "n_threads_batch": threads}
values.update({name: cast(env[var]) for var, (name, cast) in SETTINGS.items() if env.get(var)})
model = ModelSettings(verbose=False, **values)
# create_app loads the model before it returns: /health below is 200 only with a loaded model.
app = create_app(server_settings=ServerSettings(host=host, port=port), model_settings=[model])


@app.get("/health")  # type: ignore[untyped-decorator]
def health() -> dict[str, str]:
    """llama-server's liveness/readiness probe."""
    return {"status": "ok"}


uvicorn.run(app, host=host, port=port, log_level="info")
