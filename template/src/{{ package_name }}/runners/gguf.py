"""GGUF files on disk: their metadata, their tokenizer, and loaded models shared per process.

Loading a model costs seconds and hundreds of megabytes, so each (file, mode) is loaded once and
reused by every caller. llama.cpp contexts are not thread-safe; each loaded model carries a lock
that callers hold while they use it (FastAPI runs sync handlers on a thread pool).
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from llama_cpp import Llama

GGUF_MAGIC = b"GGUF"
CHAT_TEMPLATE_KEY = "tokenizer.chat_template"


def is_gguf(path: Path) -> bool:
    """True when the file starts with the GGUF magic: catches HTML error pages saved as models."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    except OSError:
        return False


@cache
def _vocab_model(resolved_path: str) -> Llama:
    from llama_cpp import Llama  # noqa: PLC0415 - native library: load only when a GGUF is used

    return Llama(model_path=resolved_path, vocab_only=True, verbose=False)


def vocab_model(path: Path) -> Llama:
    """The file's tokenizer and metadata only (no weights): loads in well under a second."""
    return _vocab_model(str(path.expanduser().resolve()))


def metadata(path: Path) -> dict[str, str]:
    """The GGUF key/value metadata, as llama.cpp reads it."""
    return dict(vocab_model(path).metadata)


def has_chat_template(path: Path) -> bool:
    """Instruction-tuned GGUFs ship a chat template; base models do not."""
    return bool(metadata(path).get(CHAT_TEMPLATE_KEY, "").strip())


def declares_pooling(path: Path) -> bool:
    """Embedding models declare how to pool token vectors; generative models usually do not."""
    return any(key.endswith(".pooling_type") for key in metadata(path))


@dataclass(frozen=True)
class ModelOptions:
    """How to load a model; part of the cache key, so different options give different models."""

    context_tokens: int = 4096
    threads: int | None = None
    gpu_layers: int = 0


@dataclass
class LoadedModel:
    """A llama.cpp model and the lock to hold while using it."""

    llama: Llama
    lock: threading.Lock
    path: Path


_models: dict[tuple[str, bool, ModelOptions], LoadedModel] = {}
_models_lock = threading.Lock()


def load_model(path: Path, *, embedding: bool, options: ModelOptions) -> LoadedModel:
    """The shared model for this file; an embedding model is a separate instance.

    llama.cpp gives embeddings only from a context created with `embedding=True`, and such a
    context is not meant for generation, hence two instances when one file does both jobs.
    """
    resolved = path.expanduser().resolve()
    key = (str(resolved), embedding, options)
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            loaded = LoadedModel(_create(resolved, embedding, options), threading.Lock(), resolved)
            _models[key] = loaded
        return loaded


def _create(path: Path, embedding: bool, options: ModelOptions) -> Llama:
    import llama_cpp  # noqa: PLC0415 - native library: load only when a GGUF is used

    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    if not is_gguf(path):
        raise ValueError(f"{path} is not a GGUF file (wrong magic bytes)")
    pooling = llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED
    batch = 512
    if embedding:
        # A whole input must fit one batch for pooled embeddings.
        batch = options.context_tokens
        if not declares_pooling(path):
            # Generative GGUFs declare no pooling, and llama.cpp would then return one vector
            # per token; mean pooling gives one vector per text.
            pooling = llama_cpp.LLAMA_POOLING_TYPE_MEAN
    return llama_cpp.Llama(
        model_path=str(path),
        embedding=embedding,
        n_ctx=options.context_tokens,
        n_batch=batch,
        n_ubatch=batch,
        n_threads=options.threads,
        n_gpu_layers=options.gpu_layers,
        pooling_type=pooling,
        verbose=False,
    )


def unload_all() -> None:
    """Frees every loaded model (tests, and long-lived processes that switch models)."""
    with _models_lock:
        for loaded in _models.values():
            with loaded.lock:
                loaded.llama.close()
        _models.clear()
    _vocab_model.cache_clear()


# Free models before interpreter shutdown tears down llama_cpp's module globals, which would
# otherwise make Llama.__del__ print tracebacks on exit.
atexit.register(unload_all)
