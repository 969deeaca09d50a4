"""A local stand-in for the Hugging Face Hub: the files `models pull` downloads, served as the Hub
serves them, so the stack's own `models pull` (huggingface_hub's `hf_hub_download`) runs
unchanged against it through HF_ENDPOINT.

    python hf_mirror.py prepare PROJECT_DIR OUT_DIR
        OUT_DIR/llm.yaml   the project's llm.yaml with its GGUF deployments (in-process and
                           llama.cpp) switched to the test models (tests/models.py): the tiny
                           SmolLM2 chat model and the all-MiniLM-L6-v2 embedding model, each with
                           a source (repo, file, commit, sha256) this mirror serves
        OUT_DIR/hf/        the files, laid out as <repo>/resolve/<commit>/<file> (hard links)
        stdout             shell assignments: LLAMACPP_CHAT_FILE=... LLAMACPP_EMBEDDING_FILE=...
    python hf_mirror.py serve ROOT [--port 8000]
        serves ROOT/hf (standard library only: it runs in the python base image)

What `hf_hub_download` needs from `HEAD`/`GET /<repo>/resolve/<revision>/<file>`
(huggingface_hub/file_download.py: get_hf_file_metadata, http_get): `X-Repo-Commit` (the
commit, else "not a Hub endpoint"), an ETag (`X-Linked-Etag`, else `ETag`; the sha256 for an
LFS file, which it also uses to verify a partial local file), the size (`X-Linked-Size`, else
`Content-Length`), `Range` requests answered 206 (resumed downloads), and 404s with
`X-Error-Code: EntryNotFound`. No Xet headers: the client downloads over plain HTTP.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

# A fixed, made-up commit per test repository: `models pull` pins a 40-hex revision.
REPOS = {
    "chat": ("copier-llmops-tests/SmolLM2-135M-Instruct-GGUF", "5e7c1d2a" * 5),
    "embed": ("copier-llmops-tests/all-MiniLM-L6-v2-GGUF", "a11d0c3e" * 5),
}
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$")
CHUNK = 1 << 20


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------ prepare
def prepare(project: Path, out: Path) -> None:
    import yaml  # noqa: PLC0415 - the template venv has it; `serve` (in a container) must not need it

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from models import chat_gguf, embedding_gguf  # noqa: PLC0415 - tests/models.py

    files = {"chat": chat_gguf(), "embed": embedding_gguf()}
    config: dict[str, Any] = yaml.safe_load((project / "llm.yaml").read_text(encoding="utf-8"))
    switched = 0
    for deployment in config["model_list"]:
        alias, info = deployment["model_name"], deployment.get("model_info") or {}
        if info.get("runner") not in {"inprocess", "llamacpp"} or alias not in files:
            continue
        path, (repo, commit) = files[alias], REPOS[alias]
        info["source"] = {
            "repo": repo,
            "file": path.name,
            "revision": commit,
            "sha256": sha256(path),
            "license": "Apache-2.0",
        }
        # The project's setting (`${CHAT_MODEL_PATH:-models/<file>}`, `${DIR:-models}/<file>`)
        # with the test model's file name.
        for holder in (deployment["litellm_params"], info):
            if "model_path" in holder:
                holder["model_path"] = re.sub(r"[^/{}]+\.gguf", path.name, holder["model_path"])
        switched += 1
    if not switched:
        sys.exit(f"{project}/llm.yaml has no in-process or llama.cpp GGUF deployment to switch")
    out.mkdir(parents=True, exist_ok=True)
    (out / "llm.yaml").write_text(
        "# Written by tests/containers/hf_mirror.py: the project's llm.yaml on the test models.\n"
        + yaml.safe_dump(config, sort_keys=False),
        encoding="utf-8",
    )
    for alias, path in files.items():
        repo, commit = REPOS[alias]
        target = out / "hf" / repo / "resolve" / commit / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
    sys.stdout.write(
        f"LLAMACPP_CHAT_FILE={files['chat'].name}\nLLAMACPP_EMBEDDING_FILE={files['embed'].name}\n"
    )


# ------------------------------------------------------------------------------ serve
class Hub(BaseHTTPRequestHandler):
    root: Path
    etags: dict[Path, str] = {}  # noqa: RUF012 - one cache per server process

    def do_HEAD(self) -> None:
        self._resolve(body=False)

    def do_GET(self) -> None:
        if urlsplit(self.path).path in {"/", "/health"}:
            self._reply(200, {"Content-Length": "3"}, b"ok\n")
            return
        self._resolve(body=True)

    def _resolve(self, *, body: bool) -> None:
        match = RESOLVE.match(unquote(urlsplit(self.path).path))
        if not match:
            self._reply(404, {"X-Error-Code": "RepoNotFound", "Content-Length": "0"})
            return
        repo, revision, name = match["repo"], match["revision"], match["file"]
        path = (self.root / "hf" / repo / "resolve" / revision / name).resolve()
        if not path.is_file() or not path.is_relative_to(self.root.resolve()):
            headers = {"X-Error-Code": "EntryNotFound", "Content-Length": "0"}
            if (self.root / "hf" / repo / "resolve" / revision).is_dir():
                headers["X-Repo-Commit"] = revision
            self._reply(404, headers)
            return
        size = path.stat().st_size
        etag = self.etags.get(path) or self.etags.setdefault(path, sha256(path))
        headers = {
            "X-Repo-Commit": revision,
            "ETag": f'"{etag}"',
            "X-Linked-Etag": f'"{etag}"',
            "X-Linked-Size": str(size),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        start, end = 0, size - 1
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if ranged:
            start = int(ranged[1])
            end = min(int(ranged[2]) if ranged[2] else size - 1, size - 1)
            if start >= size:
                self._reply(416, {**headers, "Content-Range": f"bytes */{size}"})
                return
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        self._reply(206 if ranged else 200, headers)
        if body:
            with path.open("rb") as handle:
                handle.seek(start)
                left = end - start + 1
                while left > 0:
                    block = handle.read(min(CHUNK, left))
                    if not block:
                        break
                    self.wfile.write(block)
                    left -= len(block)

    def _reply(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        sys.stderr.write(f"hf-mirror: {format % args}\n")


def serve(root: Path, port: int) -> None:
    Hub.root = root
    ThreadingHTTPServer(("0.0.0.0", port), Hub).serve_forever()  # noqa: S104 - in a container


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("prepare")
    make.add_argument("project", type=Path)
    make.add_argument("out", type=Path)
    run = commands.add_parser("serve")
    run.add_argument("root", type=Path)
    run.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.project, args.out)
    else:
        serve(args.root, args.port)


if __name__ == "__main__":
    main()
