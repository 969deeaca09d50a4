"""GGUF files on disk: their metadata, their tokenizer, and loaded models shared per process.

Loading a model costs seconds and hundreds of megabytes, so each (file, mode) is loaded once and
reused by every caller. llama.cpp contexts are not thread-safe; each loaded model carries a lock
that callers hold while they use it (FastAPI runs sync handlers on a thread pool).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llama_cpp import Llama

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
# CPU kernels left out when ggml picks one by itself: the AMX build (Sapphire Rapids) crashed
# with SIGILL on virtual machines that advertise AMX. LLM_CPU_BACKEND=sapphirerapids opts in.
_SKIPPED_CPU_VARIANTS = frozenset({"sapphirerapids"})
_CPU_PREFIX = "libggml-cpu-"


@cache
def load_backends() -> str:
    """Load llama.cpp's compute backends once; returns the CPU variant chosen ("" if built in).

    The portable build (`GGML_BACKEND_DL` with every CPU variant, see pyproject.toml) ships one
    CPU library per instruction set next to `libllama` and loads none by itself: the best one
    for this CPU is loaded here (see `cpu_backend_library`), with any GPU backend that was built.
    A build with its backends linked in needs nothing of this and is left as it is.
    """
    lib = _libllama()
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    if lib.ggml_backend_reg_count():
        return ""
    lib.ggml_backend_load.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_load.restype = ctypes.c_void_p
    for other in sorted(_backend_folder().glob("libggml-*.so")):
        if not other.name.startswith((_CPU_PREFIX, "libggml-base")):
            lib.ggml_backend_load(str(other).encode())
    variant = cpu_backend_library()
    if variant is None or not lib.ggml_backend_load(str(variant).encode()):
        raise RuntimeError(
            f"llama-cpp-python has no usable CPU backend in {_backend_folder()}: reinstall it "
            "(`uv sync --reinstall-package llama-cpp-python`)"
        )
    name = variant.name.removeprefix(_CPU_PREFIX).removesuffix(".so")
    logger.info("llama.cpp CPU backend: %s", name)
    return name


def cpu_backend_library() -> Path | None:
    """The CPU library of the portable build to load: the best this CPU runs (None if built in).

    Each variant scores the running CPU, as ggml itself does; `LLM_CPU_BACKEND` names one to
    force, e.g. `haswell`. A process that loads llama.cpp without this module (`python -m
    llama_cpp.server`) loads the same library when `GGML_BACKEND_PATH` names it.
    """
    variants = {
        path.name.removeprefix(_CPU_PREFIX).removesuffix(".so"): path
        for path in _backend_folder().glob(f"{_CPU_PREFIX}*.so")
    }
    forced = os.environ.get("LLM_CPU_BACKEND", "").strip() or "auto"
    if forced != "auto":
        if forced not in variants:
            known = ", ".join(sorted(variants))
            raise RuntimeError(f"LLM_CPU_BACKEND={forced} is not built; built: {known}")
        return variants[forced]
    best, best_score = None, 0
    for name, path in variants.items():
        if name in _SKIPPED_CPU_VARIANTS:
            continue
        score_fn = getattr(ctypes.CDLL(str(path)), "ggml_backend_score", None)
        if score_fn is None:
            continue
        score_fn.restype = ctypes.c_int
        score = int(score_fn())
        if score > best_score:
            best, best_score = path, score
    return best


def _libllama() -> ctypes.CDLL:
    """libllama as llama-cpp-python loaded it; its handle also resolves libggml's symbols."""
    import llama_cpp.llama_cpp as native  # noqa: PLC0415 - native library: load only when used

    lib: ctypes.CDLL = native._lib  # noqa: SLF001 - the one handle to the loaded library
    return lib


def _backend_folder() -> Path:
    import llama_cpp  # noqa: PLC0415 - native library: load only when used

    return Path(llama_cpp.__file__).parent / "lib"


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

    load_backends()
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
    load_backends()
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
