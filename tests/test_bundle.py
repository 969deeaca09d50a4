"""Workshop mode: `make bundle` online once, `make bundle-install` on a machine with no index.

The second machine is a fresh clone of the project with an empty uv cache, pip's index switched
off and every index and proxy pointed at a closed port: whatever it installs comes from the
bundle. It then answers a question with a citation from the bundled model, and passes its gates.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from typing import TYPE_CHECKING

import pytest

from answers import COMMAND, QUESTION, assert_cited_answer
from helpers import WHEELHOUSE, render, run
from models import tiny_gguf

if TYPE_CHECKING:
    from pathlib import Path

CLOSED = "http://127.0.0.1:9/"


def offline_env(env: dict[str, str], cache: Path) -> dict[str, str]:
    """pip without an index, uv offline, no proxy that works, and a uv cache with nothing in it."""
    blocked = {
        key: value
        for key, value in env.items()
        if not key.startswith(("UV_", "PIP_")) and key.lower() not in {"http_proxy", "https_proxy"}
    }
    return {
        **blocked,
        # uv's index settings stay as the lock was made with (else `--locked` re-resolves):
        # offline mode, an empty cache and dead proxies keep it from fetching anything.
        "UV_OFFLINE": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_CACHE_DIR": str(cache),
        "PIP_NO_INDEX": "1",
        "PIP_INDEX_URL": CLOSED,
        "PIP_CONFIG_FILE": "/dev/null",
        "HTTP_PROXY": CLOSED,
        "HTTPS_PROXY": CLOSED,
        "http_proxy": CLOSED,
        "https_proxy": CLOSED,
        "NO_PROXY": "127.0.0.1,localhost",  # loopback servers in the project's own tests
        "no_proxy": "127.0.0.1,localhost",
    }


@pytest.mark.slow
def test_a_bundle_sets_up_a_machine_with_no_network(tmp_path: Path, env: dict[str, str]) -> None:
    project = render(tmp_path / "facilitator" / "my-rag-app", {})
    run(["git", "add", "-A"], project, env)
    run(["git", "commit", "-q", "-m", "generated"], project, env)
    (project / "models").mkdir()
    shutil.copy2(tiny_gguf(), project / "models" / "gemma-3-270m-q4_k_m.gguf")
    bundle = tmp_path / "usb-stick" / "bundle"
    # The facilitator's machine is online; llama-cpp-python is taken from the wheel built once.
    links = " ".join(filter(None, [str(WHEELHOUSE), env.get("PIP_FIND_LINKS")]))
    online = {**env, "PIP_FIND_LINKS": links}
    # No images: none is built or pulled here (the container test builds its own, elsewhere).
    run(
        ["make", "bundle", f"BUNDLE={bundle}", "BUNDLE_ARGS=--no-images"],
        project,
        online,
        timeout=1800,
    )

    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    paths = {entry["path"] for entry in manifest["files"]}
    assert "models/gemma-3-270m-q4_k_m.gguf" in paths
    [llama] = [path for path in paths if path.startswith("wheels/llama_cpp_python-0.3.36-")]
    with zipfile.ZipFile(bundle / llama) as wheel:  # portable: every CPU variant, not native
        names = wheel.namelist()
    assert "llama_cpp/lib/libggml-cpu-x64.so" in names
    assert "llama_cpp/lib/libggml-cpu-haswell.so" in names
    assert any(path.startswith("wheels/uv-") for path in paths)
    assert manifest["images_note"] == "skipped (--no-images)"

    laptop = tmp_path / "laptop" / "my-rag-app"
    run(["git", "clone", "-q", str(project), str(laptop)], tmp_path, env)
    shutil.copy2(project / ".env", laptop / ".env")
    offline = offline_env(env, tmp_path / "empty-uv-cache")
    # This test project's uv.lock names the local wheelhouse as llama-cpp-python's source (see
    # helpers.prepare_renders), so `uv run --locked` needs it to see the lock as current. The
    # install itself drops it: bundle.py installs from the bundle's wheels only.
    offline["UV_FIND_LINKS"] = str(WHEELHOUSE)
    result = run(["make", "bundle-install", f"BUNDLE={bundle}"], laptop, offline)
    assert "Done, offline" in result.stdout

    cli = ["uv", "run", "--locked", COMMAND]
    run([*cli, "ingest", "--json"], laptop, offline)
    answer = json.loads(run([*cli, "ask", QUESTION, "--json"], laptop, offline).stdout)
    assert_cited_answer(answer)
    run(["make", "check"], laptop, offline)
    assert not any((tmp_path / "empty-uv-cache").glob("wheels-*/pypi/*")), "uv downloaded"


@pytest.mark.slow
def test_a_damaged_bundle_is_refused_with_the_files_named(
    tmp_path: Path, env: dict[str, str]
) -> None:
    project = render(tmp_path / "my-rag-app", {}, skip_tasks=True)
    bundle = tmp_path / "bundle"
    (bundle / "wheels").mkdir(parents=True)
    wheel = bundle / "wheels" / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"a wheel")
    script = next(project.glob("src/*/bundle.py"))
    write = (
        "import sys, pathlib; sys.path.insert(0, str(pathlib.Path(sys.argv[1]).parent)); "
        "import bundle; bundle.write_manifest(pathlib.Path(sys.argv[2]), python='3.12', "
        "images=[], note='')"
    )
    run(["python3", "-c", write, str(script), str(bundle)], project, env)
    wheel.write_bytes(b"a changed wheel")
    result = subprocess.run(
        ["make", "bundle-install", f"BUNDLE={bundle}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "the bundle is damaged" in result.stderr
    assert "wheels/demo-1.0-py3-none-any.whl" in result.stderr
    assert not (project / ".venv").exists()
