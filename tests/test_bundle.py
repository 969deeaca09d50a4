"""Workshop kit: `make bundle` online once, `make bundle-install` on a laptop with no network.

The facilitator's machine reaches PyPI only (llama-cpp-python comes from the portable wheel built
once, as a facilitator's own build would). The laptop is a fresh clone with no uv on PATH, an empty
uv cache, pip's index off, every proxy on a closed port and uv offline: whatever it installs comes
from the bundle. It then answers from the bundled models, citing the right file, and passes its
own gates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from answers import COMMAND, QUESTION, SOURCE
from helpers import TEMPLATE_VENV_BIN, WHEELHOUSE, render, run
from models import chat_gguf, embedding_gguf, model_env

CLOSED = "http://127.0.0.1:9/"
ANSWERS = {"runners": ["inprocess"], "with_workshop": True}


def offline(env: dict[str, str], cache: Path) -> dict[str, str]:
    """No uv on PATH, pip without an index, uv offline on an empty cache, no proxy that works."""
    kept = {
        key: value
        for key, value in env.items()
        if not key.startswith(("UV_", "PIP_")) and key.lower() not in {"http_proxy", "https_proxy"}
    }
    path = [p for p in env["PATH"].split(os.pathsep) if p != str(TEMPLATE_VENV_BIN)]
    assert not shutil.which("uv", path=os.pathsep.join(path)), "uv is on the laptop's PATH"
    return {
        **kept,
        "PATH": os.pathsep.join(path),
        "UV_OFFLINE": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_CACHE_DIR": str(cache),
        "PIP_NO_INDEX": "1",
        "PIP_INDEX_URL": CLOSED,
        "PIP_CONFIG_FILE": "/dev/null",
        **dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"), CLOSED),
        "NO_PROXY": "127.0.0.1,localhost",  # loopback servers in the project's own tests
        "no_proxy": "127.0.0.1,localhost",
    }


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


@pytest.mark.slow
def test_a_bundle_sets_a_laptop_up_with_no_network(tmp_path: Path, env: dict[str, str]) -> None:
    project = render(tmp_path / "facilitator" / "my-rag-app", ANSWERS)
    run(["git", "add", "-A"], project, env)
    run(["git", "commit", "-q", "-m", "generated"], project, env)
    (project / "models").mkdir()
    models = model_env()
    for variable in ("CHAT_MODEL_PATH", "EMBEDDING_MODEL_PATH"):  # on both machines: models/
        name = Path(models[variable]).name
        shutil.copy2(models[variable], project / "models" / name)
        models[variable] = f"models/{name}"
    bundle = tmp_path / "usb-stick" / "bundle"
    links = " ".join(filter(None, [str(WHEELHOUSE), env.get("PIP_FIND_LINKS")]))
    online = {**env, **models, "PIP_FIND_LINKS": links}
    started = time.monotonic()
    made = run(
        ["make", "bundle", f"BUNDLE={bundle}", "BUNDLE_ARGS=--no-images"], project, online, 1800
    )
    bundled = time.monotonic() - started

    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    paths = {entry["path"] for entry in manifest["files"]}
    assert manifest["models"] == [chat_gguf().name, embedding_gguf().name]
    assert {f"models/{name}" for name in manifest["models"]} <= paths
    [llama] = [path for path in paths if path.startswith("wheels/llama_cpp_python-")]
    with zipfile.ZipFile(bundle / llama) as wheel:  # portable: every CPU variant, none native
        names = set(wheel.namelist())
    assert {"llama_cpp/lib/libggml-cpu-x64.so", "llama_cpp/lib/libggml-cpu-haswell.so"} <= names
    assert any(path.startswith(f"wheels/uv-{manifest['uv']}-") for path in paths)
    assert any(path.startswith("wheels/uv_build-") for path in paths)
    assert manifest["images_note"] == "skipped (--no-images)"
    size = sum(entry["size"] for entry in manifest["files"])

    laptop = tmp_path / "laptop" / "my-rag-app"
    run(["git", "clone", "-q", str(project), str(laptop)], tmp_path, env)
    cache = tmp_path / "empty-uv-cache"
    no_network = {**offline(env, cache), **models}
    started = time.monotonic()
    installed = run(["make", "bundle-install", f"BUNDLE={bundle}"], laptop, no_network)
    took = time.monotonic() - started
    assert "with no network. Next:" in installed.stdout, installed.stdout
    assert (laptop / "models" / chat_gguf().name).read_bytes() == chat_gguf().read_bytes()

    doctor = run(["make", "doctor"], laptop, no_network).stdout
    assert "- [x] **runner inprocess**" in doctor, doctor
    cli = [str(laptop / ".bundle-tools" / "bin" / "uv"), "run", "--locked", COMMAND]
    run([*cli, "ingest", "--json"], laptop, no_network)
    answer = json.loads(run([*cli, "ask", QUESTION, "--json"], laptop, no_network).stdout)
    assert SOURCE in [source["path"] for source in answer["sources"] if source["cited"]], answer
    run(["make", "check"], laptop, no_network)
    assert not list(cache.glob("*/pypi")), "uv downloaded something"
    say(
        f"\nbundle: {size / 1e6:.0f} MB, {len(paths)} files, made in {bundled:.0f} s; "
        f"installed offline in {took:.0f} s\n{made.stdout}\n{installed.stdout}"
    )


def test_a_damaged_bundle_is_refused_with_the_files_named(
    tmp_path: Path, env: dict[str, str]
) -> None:
    project = render(tmp_path / "my-rag-app", ANSWERS, skip_tasks=True)
    bundle = tmp_path / "bundle"
    (bundle / "wheels").mkdir(parents=True)
    wheel = bundle / "wheels" / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"a wheel")
    write = (
        "import runpy, sys; from pathlib import Path; "
        "ns = runpy.run_path('scripts/bundle.py'); "
        "ns['write_manifest'](Path(sys.argv[1]), python='3.12', platform=ns['machine'](), "
        "uv='0.13.8', models=[], images=[], images_note='')"
    )
    run(["python3", "-c", write, str(bundle)], project, env)
    wheel.write_bytes(b"a whale")  # as long, other bytes
    result = subprocess.run(
        ["make", "bundle-install", f"BUNDLE={bundle}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "the bundle is damaged; nothing was installed" in result.stderr
    assert "wheels/demo-1.0-py3-none-any.whl: sha256 differs from the manifest" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / ".venv").exists()
    assert not (project / ".bundle-tools").exists()
