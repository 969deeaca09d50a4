"""The default project answers a question about its sample documents, for real, and the
llama-cpp-python wheel it runs on is portable. An ingest killed part way goes on where it
stopped, on the real embedding model.

The models are real (tests/models.py: SmolLM2-135M-Instruct and all-MiniLM-L6-v2 from PyPI);
nothing is faked between the generated CLI and llama.cpp.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import zipfile
from typing import TYPE_CHECKING, Any

import pytest

import wheelhouse
from answers import COMMAND, QUESTION, SOURCE, assert_cited_answer
from helpers import render, run
from models import model_env

if TYPE_CHECKING:
    from pathlib import Path
    from subprocess import CompletedProcess


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    """The default project, set up."""
    path = render(tmp_path_factory.mktemp("ai") / "my-rag-app", {})
    run(["make", "setup"], path, env)
    return path


@pytest.fixture(scope="module")
def real(env: dict[str, str]) -> dict[str, str]:
    return {**env, **model_env()}


def cli(project: Path, env: dict[str, str], *args: str) -> str:
    return run(["uv", "run", "--locked", COMMAND, *args], project, env).stdout


@pytest.mark.slow
def test_the_default_project_answers_with_a_citation(project: Path, real: dict[str, str]) -> None:
    report = json.loads(cli(project, real, "ingest", "--json"))
    assert report["mode"] == "hybrid"
    assert report["chunks_embedded"] == report["chunks"] > 0
    answer: dict[str, Any] = json.loads(cli(project, real, "ask", QUESTION, "--json"))
    assert_cited_answer(answer)
    assert answer["retrieval"] == {"mode": "hybrid", "reason": ""}
    again = json.loads(cli(project, real, "ingest", "--json"))
    assert again["indexed"] == 0
    assert again["unchanged"] == report["files"]
    streamed = cli(project, real, "ask", QUESTION, "--stream")
    assert SOURCE in streamed


@pytest.mark.slow
def test_keyword_only_indexing_is_a_choice_that_says_so(
    project: Path, real: dict[str, str]
) -> None:
    lexical = {**real, "RAG_LEXICAL_ONLY": "true", "RAG_INDEX_PATH": "data/lexical.sqlite3"}
    report = json.loads(cli(project, lexical, "ingest", "--json"))
    assert report["mode"] == "lexical"
    assert report["chunks_embedded"] == 0
    answer = json.loads(cli(project, lexical, "ask", QUESTION, "--json"))
    assert answer["retrieval"]["mode"] == "lexical"
    assert "RAG_LEXICAL_ONLY" in answer["retrieval"]["reason"]
    broken = {
        **real,
        "EMBEDDING_MODEL_PATH": str(project / "README.md"),
        "RAG_INDEX_PATH": "data/x.sqlite3",
    }
    failed = run_failing(project, broken, "ingest")
    assert failed.returncode == 6
    assert "RAG_LEXICAL_ONLY" in failed.stderr
    assert "README.md" in failed.stderr


KILLED_FILES = 24


def many_notes(folder: Path) -> None:
    """Files of a few chunks each, all different."""
    folder.mkdir(parents=True)
    for n in range(KILLED_FILES):
        lines = [
            f"Note {n} line {line}: the shuttle to site {n % 7} leaves at {line % 12 + 1} o'clock."
            for line in range(40)
        ]
        text = f"# Note {n}\n\n" + "\n\n".join(" ".join(lines[i : i + 8]) for i in range(0, 40, 8))
        (folder / f"note-{n:03}.md").write_text(text, encoding="utf-8")


def index_rows(index: Path) -> tuple[list[Any], list[Any]]:
    """What an index holds: each file's fingerprint, each chunk and whether it has a vector."""
    with sqlite3.connect(f"file:{index.resolve()}?mode=ro", uri=True) as db:
        sources = db.execute("SELECT source, fingerprint FROM sources ORDER BY 1").fetchall()
        chunks = db.execute(
            "SELECT id, source, idx, start, end_, heading, text, vector IS NOT NULL "
            "FROM chunks ORDER BY 1"
        ).fetchall()
    return sources, chunks


def done_in(index: Path) -> int:
    """Files an ingest has committed so far (0 before the index exists)."""
    try:
        sources, _ = index_rows(index)
    except sqlite3.Error:
        return 0
    return sum(1 for _, fingerprint in sources if fingerprint != "partial")


def killed_when(project: Path, env: dict[str, str], index: Path, *args: str) -> None:
    """Run `ingest *args` and SIGKILL it once a third of the files are committed in `index`."""
    command = [str(project / ".venv/bin" / COMMAND), "ingest", "--json", *args]
    process = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while done_in(index) < KILLED_FILES // 3:
            assert process.poll() is None, "the ingest ended before it could be killed"
            assert time.monotonic() < deadline, "the ingest made no progress"
            time.sleep(0.02)
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_an_ingest_killed_part_way_goes_on_where_it_stopped(
    project: Path, real: dict[str, str]
) -> None:
    many_notes(project / "data" / "many")
    env = {**real, "RAG_DOCS_PATH": "data/many", "RAG_INDEX_PATH": "data/many.sqlite3"}
    index = project / "data" / "many.sqlite3"
    killed_when(project, env, index)
    sources, chunks = index_rows(index)
    done = done_in(index)
    embedded = sum(1 for chunk in chunks if chunk[-1])
    assert KILLED_FILES // 3 <= done < KILLED_FILES, sources
    resumed = json.loads(cli(project, env, "ingest", "--json"))
    # Nothing done twice: the files committed are not read again, no chunk is embedded twice.
    assert resumed["unchanged"] == done
    assert resumed["indexed"] == KILLED_FILES - done
    assert resumed["chunks_embedded"] == resumed["chunks"] - embedded
    whole = {**env, "RAG_INDEX_PATH": "data/whole.sqlite3"}
    uninterrupted = json.loads(cli(project, whole, "ingest", "--json"))
    assert uninterrupted["indexed"] == KILLED_FILES
    assert index_rows(index) == index_rows(project / "data" / "whole.sqlite3")
    print(  # noqa: T201 - the figures for the record
        f"killed after {done}/{KILLED_FILES} files ({embedded} chunks embedded); the re-run: "
        f"{resumed['unchanged']} unchanged, {resumed['indexed']} indexed, "
        f"{resumed['chunks_embedded']} of {resumed['chunks']} chunks embedded"
    )
    # A rebuild killed part way leaves the live index as it was; the next one starts over.
    before = index_rows(index)
    staging = project / "data" / ".many.sqlite3.rebuild"
    killed_when(project, env, staging, "--rebuild")
    assert index_rows(index) == before
    left = staging.resolve()
    assert left.is_file()
    rebuilt = json.loads(cli(project, env, "ingest", "--rebuild", "--json"))
    assert rebuilt["indexed"] == KILLED_FILES
    assert not staging.is_symlink()
    assert not left.exists()
    assert index_rows(index) == before


def run_failing(project: Path, env: dict[str, str], *args: str) -> CompletedProcess[str]:
    return subprocess.run(
        ["uv", "run", "--locked", COMMAND, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


# Generate with the wheel as the app loads it (llm/runners/inprocess.py picks the CPU variant).
GENERATE = """
import json, sys
from my_rag_app.llm.runners import inprocess
variant = inprocess.load_backends(sys.argv[2] or "auto")
from llama_cpp import Llama
llama = Llama(sys.argv[1], n_ctx=256, n_threads=2, verbose=False)
out = llama.create_completion("The capital of France is", max_tokens=8, temperature=0)
print(json.dumps({"variant": variant, "tokens": out["usage"]["completion_tokens"],
                  "text": out["choices"][0]["text"]}))
"""


def test_the_wheel_is_portable() -> None:
    """No -march=native build: one CPU library per instruction set, chosen at run time."""
    built = wheelhouse.wheel()
    assert built is not None, "run `make wheels`"
    assert "-DGGML_NATIVE=OFF" in wheelhouse.cmake_args()
    with zipfile.ZipFile(built) as archive:
        variants = {
            name.rsplit("/", 1)[-1].removeprefix("libggml-cpu-").removesuffix(".so")
            for name in archive.namelist()
            if name.startswith("llama_cpp/lib/libggml-cpu-")
        }
    assert {"x64", "sse42", "haswell", "skylakex", "icelake", "alderlake"} <= variants


@pytest.mark.slow
@pytest.mark.parametrize("forced", ["", "x64", "haswell"], ids=["auto", "x64", "haswell"])
def test_the_wheel_generates_on_each_cpu_variant(
    project: Path, real: dict[str, str], forced: str
) -> None:
    """The best variant for this CPU, the baseline x86-64 one (any old CPU) and AVX2."""
    script = ["uv", "run", "--locked", "python", "-c", GENERATE, real["CHAT_MODEL_PATH"], forced]
    result = json.loads(run(script, project, real).stdout.strip().splitlines()[-1])
    assert result["tokens"] > 0, result
    assert result["text"].strip(), result
    if forced:
        assert result["variant"] == forced
    else:
        # auto never picks the AMX build, which crashed (SIGILL) on VMs that advertise AMX
        assert result["variant"] not in {"", "sapphirerapids"}, result
