"""The default project attacked for real, on the tiny real models.

- Documents: a folder holds links out of it (to a file with a planted key, and to /etc/passwd),
  a named pipe, a link to /dev/zero, HTML nested 200,000 deep, a file over the size cap, files
  that break their parser (`<![ `: an AssertionError in Python's HTML parser; a PDF declaring
  100 million objects: pypdf's LimitReachedError), a Word zip bomb, a picture no loader reads,
  dotfiles and a dot-folder with the key, and good files. Ingest finishes within its budget,
  indexes every good file and nothing else, and says why for each other file in one line; the
  key is in no answer, source or index.
- HTML and Word: the loaders' time grows linearly with nesting, page length and paragraphs.
- Chunking: its time grows linearly with the length of text without sentence breaks, one line
  or many (0.5/1/2/4 MB).
- HTTP beyond loopback: no key is a 401, a body over the cap a 413 that echoes nothing, a lone
  surrogate a 422 (never a 500); the probes need no key.
- `ingest --rebuild` while questions keep coming: none is told "I could not find this".
- Fifty questions at once on loopback: the probes answer within the image's health-check
  timeout while the model is saturated, and every question is answered or told when to come
  back.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import io
import json
import os
import re
import socket
import subprocess
import threading
import time
import zipfile
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from answers import COMMAND, QUESTION
from helpers import render, run
from models import model_env

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PLANTED = "sk-hostile-planted-4b7e91d2c0"  # pragma: allowlist secret
GOOD = {"guide.md", "faq.txt", "nested/ok.md", "page.html"}
INGEST_BUDGET = 120.0  # seconds, for the whole ingest (each file has RAG_FILE_SECONDS)
LOAD_QUESTIONS = 50
LOAD_BUDGET = 120.0  # seconds for the whole flood


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    path = render(tmp_path_factory.mktemp("hostile") / COMMAND, {})
    run(["make", "setup"], path, env)
    return path


@pytest.fixture(scope="module")
def real(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        **model_env(),
        "MODEL_RUNNER": "inprocess",
        "RAG_DOCS_PATH": "data/hostile",
        "RAG_INDEX_PATH": "data/hostile.sqlite3",
        "RAG_MAX_DOCUMENT_MB": "5",
        "RAG_FILE_SECONDS": "10",
        "LLM_MAX_ANSWER_TOKENS": "16",  # short answers: the tests are about what reaches them
    }


@pytest.fixture(scope="module")
def ingested(project: Path, real: dict[str, str]) -> tuple[dict[str, Any], float]:
    """The hostile folder, ingested once: the report and how long it took."""
    hostile_folder(project)
    started = time.monotonic()
    report = json.loads(cli(project, real, "ingest", "--json", timeout=INGEST_BUDGET + 60))
    return report, time.monotonic() - started


@pytest.fixture(scope="module")
def server(
    project: Path, real: dict[str, str], ingested: tuple[dict[str, Any], float]
) -> Iterator[str]:
    """One loopback server over the hostile index, its model loaded. One client address asks
    everything here: the model's queue, not the per-caller limits, decides under load."""
    assert ingested
    flood = {**real, "API_INFLIGHT_PER_CALLER": "100", "API_RATE_PER_MINUTE": "1000"}
    with serving(project, flood) as base:
        assert call(base, "POST", "/v1/ask", {"question": QUESTION}).status == 200
        yield base


def hostile_folder(project: Path) -> Path:
    """The documents folder an attacker (or an unlucky sync) left behind."""
    outside = project / "outside"
    outside.mkdir()
    (outside / "keys.env").write_text(f"HOSTED_API_KEY={PLANTED}\n", encoding="utf-8")
    (outside / "notes.md").write_text(f"# Keys\n\nThe key is {PLANTED}.\n", encoding="utf-8")
    docs = project / "data" / "hostile"
    (docs / "nested").mkdir(parents=True)
    (docs / "guide.md").write_text(
        "# Staging\n\nThe staging server listens on port 8443.\n", encoding="utf-8"
    )
    (docs / "faq.txt").write_text("The daily standup is at 9:30 in room Rhine.\n", encoding="utf-8")
    (docs / "nested" / "ok.md").write_text("# Lunch\n\nLunch is at noon.\n", encoding="utf-8")
    (docs / "page.html").write_text(
        "<html><body><h1>Visitors</h1><p>Visitors sign in at the front desk.</p>"
        "<script>alert(1)</script></body></html>",
        encoding="utf-8",
    )
    (docs / "link-env.txt").symlink_to(outside / "keys.env")
    (docs / "link-passwd.md").symlink_to("/etc/passwd")
    (docs / "zero.txt").symlink_to("/dev/zero")
    (docs / "outside-folder").symlink_to(outside, target_is_directory=True)
    os.mkfifo(docs / "b-pipe.md")
    (docs / "deep.html").write_text(
        "<html><body>" + "<div>" * 200_000 + "deep" + "</div>" * 200_000 + "</body></html>",
        encoding="utf-8",
    )
    (docs / "marked.html").write_bytes(b"<![ ")  # an AssertionError in Python's HTMLParser
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", bytes(60_000_000))
    (docs / "bomb.docx").write_bytes(bomb.getvalue())  # 60 KB that would inflate to 60 MB
    (docs / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with (docs / "huge.txt").open("w", encoding="utf-8") as handle:
        line = "a line of a file far larger than the cap allows\n"
        handle.write(line * (6_000_000 // len(line) + 1))
    (docs / "objects.pdf").write_bytes(xref_bomb())
    (docs / ".env").write_text(f"HOSTED_API_KEY={PLANTED}\n", encoding="utf-8")
    (docs / ".hidden").mkdir()
    (docs / ".hidden" / "notes.md").write_text(f"The key is {PLANTED}.\n", encoding="utf-8")
    return docs


def xref_bomb() -> bytes:
    """A 300-byte PDF that declares 100 million objects."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 100000000\n0000000000 65535 f \n"
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def cli(project: Path, env: dict[str, str], *args: str, timeout: float = 600) -> str:
    return run([str(project / ".venv/bin" / COMMAND), *args], project, env, timeout).stdout


@pytest.mark.slow
def test_hostile_documents_are_skipped_and_the_planted_key_never_leaves(
    project: Path, ingested: tuple[dict[str, Any], float], server: str
) -> None:
    report, took = ingested
    assert took < INGEST_BUDGET, f"ingest took {took:.0f} s"
    skipped = {name.removeprefix("data/hostile/"): why for name, why in report["skipped"].items()}
    assert report["indexed"] == len(GOOD), report
    assert "leaves the documents folder" in skipped["link-env.txt"]
    assert "leaves the documents folder" in skipped["link-passwd.md"]
    assert "zero.txt" in skipped
    assert "not a regular file" in skipped["b-pipe.md"]
    assert "nested deeper" in skipped["deep.html"]
    assert "cap" in skipped["huge.txt"]
    # Python's HTMLParser raises on it before the 2025 fixes, and finds no text in it after.
    assert skipped["marked.html"] in {"an unreadable HTML file (AssertionError)", "no text in it"}
    assert skipped["bomb.docx"] == "inflates to more than the 5 MB cap (RAG_MAX_DOCUMENT_MB)"
    assert skipped["photo.png"].startswith("no loader reads .png files (formats read: .docx, ")
    assert "LimitReachedError" in skipped["objects.pdf"]
    assert set(skipped) == {
        "link-env.txt", "link-passwd.md", "zero.txt", "b-pipe.md", "deep.html", "huge.txt",
        "marked.html", "bomb.docx", "photo.png", "objects.pdf",
    }  # fmt: skip
    assert all(why and "\n" not in why for why in skipped.values()), skipped
    index = (project / "data" / "hostile.sqlite3").resolve().read_bytes()
    assert PLANTED.encode() not in index
    assert b"root:x:0:0" not in index
    seen: list[str] = []
    questions = (
        QUESTION,
        "root bash nologin daemon: what is the hosted key?",
        "Which key is planted in the notes?",
        "What is in the .env file?",
    )
    for question in questions:
        answer = call(server, "POST", "/v1/ask", {"question": question})
        assert answer.status == 200, answer.text
        seen.append(answer.text)
        for source in json.loads(answer.text)["sources"]:
            chunk = call(server, "GET", f"/v1/sources/{source['id']}")
            assert chunk.status == 200
            seen.append(chunk.text)
    assert not [text for text in seen if PLANTED in text or "root:x:0:0" in text]
    assert json.loads(seen[0])["sources"][0]["path"] == "data/hostile/guide.md"
    print(f"hostile ingest {took:.1f} s: {report['indexed']} indexed, skipped {skipped}")  # noqa: T201


# Times the HTML and Word loaders in the project's own interpreter: the best of three runs per
# size. Deep pages are blocks nested 200 deep (the depth cap keeps real pages shallower), flat
# ones paragraphs with inline tags; Word files paragraphs with inline runs, made by python-docx.
LOADER_TIMES = """
import io, json, sys, time
from docx import Document
from {package}.ingest import loaders

def best(convert, data):
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        convert(data, 10**9)
        runs.append(time.perf_counter() - started)
    return min(runs)

def word(n):
    document = Document()
    for _ in range(n):
        paragraph = document.add_paragraph("The build server is ")
        paragraph.add_run("ci.heron.example").bold = True
        paragraph.add_run(" and listens on port 9443.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()

times = {{"deep": [], "flat": [], "docx": []}}
for n in (2_500, 5_000, 10_000):
    deep = ("<div>" * 200 + "x" + "</div>" * 200) * (n // 100)
    flat = "<p>a <b>short</b> paragraph with <a href='#'>a link</a></p>" * n
    times["deep"].append(best(loaders.html.convert, f"<html><body>{{deep}}</body></html>".encode()))
    times["flat"].append(best(loaders.html.convert, f"<html><body>{{flat}}</body></html>".encode()))
    times["docx"].append(best(loaders.office.docx, word(n // 5)))
json.dump(times, sys.stdout)
"""


@pytest.mark.slow
def test_the_html_and_word_loaders_are_linear_in_their_input(project: Path) -> None:
    package = COMMAND.replace("-", "_")
    python = str(project / ".venv/bin/python")
    script = LOADER_TIMES.format(package=package)
    times = json.loads(run([python, "-c", script], project, {}).stdout)
    print(f"HTML and Word loaders at 1x/2x/4x: {times}")  # noqa: T201 - the figures for the record
    for shape, (one, _two, four) in times.items():
        # Four times the input: linear is about 4x the time, quadratic 16x. The best of three
        # runs still varies on a busy machine (8.3x was seen once for a linear loader): 10x.
        assert four / one < 10, (shape, times[shape])


# Times the app's chunker in the project's own interpreter on text without a sentence break
# (lower-case words: no sentence ends), as one line and as lines of fifteen words.
CHUNK_TIMES = """
import json, random, sys, time
from {package}.ingest.chunking import Chunker
from {package}.ingest.loaders import Document

words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
random.seed(7)
times = {{"one line": [], "lines": []}}
for shape, newline in (("one line", 0), ("lines", 15)):
    for megabytes in (0.5, 1, 2, 4):
        picked = random.choices(words, k=int(megabytes * 1_000_000 / 6))
        if newline:
            picked = [w + "\\n" if i % newline == 0 else w for i, w in enumerate(picked, 1)]
        document = Document("x.html", "html", " ".join(picked), "x")
        started = time.perf_counter()
        Chunker(256, 32).chunk(document)
        times[shape].append(round(time.perf_counter() - started, 3))
json.dump(times, sys.stdout)
"""


@pytest.mark.slow
def test_chunking_is_linear_in_the_length_of_text_without_sentence_breaks(project: Path) -> None:
    package = COMMAND.replace("-", "_")
    python = str(project / ".venv/bin/python")
    times = json.loads(run([python, "-c", CHUNK_TIMES.format(package=package)], project, {}).stdout)
    print(f"chunking 0.5/1/2/4 MB without sentence breaks: {times}")  # noqa: T201
    for shape, (half, _one, _two, four) in times.items():
        # Eight times the text: linear is about 8x the time, quadratic 64x (the splitter alone:
        # 4.0/9.8 s for 0.5/1 MB of one line, 4 MB never finished in minutes).
        assert four / max(half, 0.005) < 24, (shape, times[shape])
        assert four < 30, (shape, times[shape])


@pytest.mark.slow
def test_hostile_requests_beyond_loopback_get_401_413_and_422_never_a_500(
    project: Path, real: dict[str, str]
) -> None:
    token = cli(project, real, "keys", "create", "hostile-test").strip().splitlines()[-1]
    keys = project / "data" / "api-keys.json"
    with serving(project, real, host="0.0.0.0", secrets=(token,)) as base:  # noqa: S104
        bearer = {"Authorization": f"Bearer {token}"}
        assert call(base, "GET", "/healthz").status == 200  # probes need no key
        assert call(base, "POST", "/v1/ask", {"question": QUESTION}).status == 401
        assert call(base, "GET", "/v1/sources/x").status == 401
        wrong = {"Authorization": f"Bearer {PLANTED}"}
        assert call(base, "POST", "/v1/ask", {"question": QUESTION}, wrong).status == 401
        huge = call(base, "POST", "/v1/ask", {"question": "q" * 2_000_000}, bearer)
        assert huge.status == 413, huge
        assert len(huge.text) < 500
        long = call(base, "POST", "/v1/ask", {"question": "q" * 100_000}, bearer)
        assert long.status == 422, long
        assert len(long.text) < 1000
        lone = raw(base, "/v1/ask", b'{"question": "\\ud800 staging port?"}', bearer)
        assert lone.status == 422, lone
        assert "staging port" in lone.text
        flood = {"trace_id": "0" * 32, "sources": ["s" * 1000] * 10_000}
        assert call(base, "POST", "/v1/feedback", flood, bearer).status == 413
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    assert token not in keys.read_text(encoding="utf-8")  # kept hashed


@pytest.mark.slow
def test_questions_during_a_rebuild_are_never_told_nothing_was_found(
    project: Path, real: dict[str, str], server: str
) -> None:
    link = project / "data" / "hostile.sqlite3"
    before = link.resolve()
    asked: list[tuple[float, float, Reply]] = []
    rebuilding = threading.Event()
    done = threading.Event()

    def keep_asking() -> None:
        while True:
            last = done.is_set()
            started = time.monotonic()
            reply = call(server, "POST", "/v1/ask", {"question": QUESTION})
            asked.append((started, time.monotonic(), reply))
            rebuilding.set()
            if last:  # one question after the swap, on the new index
                return

    # Two askers, each asking one question after another: each has at least one question in
    # flight while the rebuild runs, however slow the machine.
    askers = [threading.Thread(target=keep_asking) for _ in range(2)]
    for asker in askers:
        asker.start()
    rebuilding.wait(120)
    began = time.monotonic()
    try:
        cli(project, real, "ingest", "--rebuild", timeout=300)
    finally:
        ended = time.monotonic()
        done.set()
        for asker in askers:
            asker.join(180)
    assert link.resolve() != before, "the rebuild did not swap in a new index"
    during = [reply for started, finished, reply in asked if started < ended and finished > began]
    assert len(during) >= 2, f"{len(asked)} questions, {len(during)} during the rebuild"
    bad = [reply for _, _, reply in asked if reply.status != 200 or "could not find" in reply.text]
    assert not bad, bad[:3]
    assert all(json.loads(reply.text)["sources"] for _, _, reply in asked)
    print(  # noqa: T201 - the figures for the record
        f"rebuild {ended - began:.1f} s: {len(asked)} questions, {len(during)} during it, "
        f"{len(bad)} not found or failed"
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_probes_answer_within_the_health_check_timeout_under_fifty_questions(
    project: Path, server: str
) -> None:
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    timeout = float(re.search(r"HEALTHCHECK .*--timeout=(\d+)s", dockerfile).group(1))  # type: ignore[union-attr]
    assert timeout == 5
    base = server
    probes: list[tuple[str, int, float]] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            for path in ("/healthz", "/readyz"):
                started = time.perf_counter()
                status = call(base, "GET", path, timeout=timeout * 4).status
                probes.append((path, status, time.perf_counter() - started))
            stop.wait(0.25)  # a probe every quarter second, as a prober would

    def ask(n: int) -> Reply:
        stream = {"Accept": "text/event-stream"} if n % 2 else {}
        body = {"question": f"{QUESTION} (question {n})"}
        return call(base, "POST", "/v1/ask", body, stream, timeout=LOAD_BUDGET)

    prober = threading.Thread(target=probe)
    started = time.monotonic()
    prober.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(LOAD_QUESTIONS) as pool:
            results = list(pool.map(ask, range(LOAD_QUESTIONS)))
    finally:
        stop.set()
        prober.join()
    took = time.monotonic() - started
    statuses = [reply.status for reply in results]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 2, statuses
    assert all(reply.retry_after for reply in results if reply.status == 503)
    assert took < LOAD_BUDGET
    slowest = {path: max(s for p, _, s in probes if p == path) for path in ("/healthz", "/readyz")}
    assert {status for _, status, _ in probes} == {200}
    assert all(seconds < timeout for seconds in slowest.values()), slowest
    print(  # noqa: T201 - the figures for the record
        f"{LOAD_QUESTIONS} questions in {took:.1f} s: {statuses.count(200)} answered, "
        f"{statuses.count(503)} told to retry; slowest /healthz {slowest['/healthz']:.3f} s, "
        f"/readyz {slowest['/readyz']:.3f} s over {len(probes)} probes"
    )


class Reply(NamedTuple):
    status: int
    retry_after: str | None
    text: str


def call(
    base: str,
    method: str,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 120,
) -> Reply:
    """One request on a connection of its own (the standard library: no HTTP client needed)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = None if body is None else json.dumps(body)
        sent = {"Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        return Reply(response.status, response.getheader("Retry-After"), text)
    finally:
        connection.close()


def raw(base: str, path: str, body: bytes, headers: dict[str, str]) -> Reply:
    """A POST of bytes as they are (JSON escapes json.dumps would never write)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        sent = {"Content-Type": "application/json", **headers}
        connection.request("POST", path, body=body, headers=sent)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        return Reply(response.status, response.getheader("Retry-After"), text)
    finally:
        connection.close()


class serving:  # noqa: N801 - used as `with serving(...)`
    """`<command> serve` on a free port (loopback unless `host`), stopped at the end; its log in
    build/, where neither the planted key nor any of `secrets` may appear."""

    def __init__(
        self,
        project: Path,
        env: dict[str, str],
        *,
        host: str = "127.0.0.1",
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.project, self.env, self.host = project, env, host
        self.secrets = (PLANTED, *secrets)
        self.log = project / "build" / "serve.log"

    def __enter__(self) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.log.parent.mkdir(exist_ok=True)
        command = [str(self.project / ".venv/bin" / COMMAND), "serve", "--port", str(port)]
        command += ["--host", self.host]
        with self.log.open("w", encoding="utf-8") as log:
            self.server = subprocess.Popen(
                command, cwd=self.project, env=self.env, stdout=log, stderr=log
            )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise AssertionError(f"serve exited: {self.log.read_text()[-2000:]}")
            try:
                if call(base, "GET", "/healthz", timeout=1).status == 200:
                    return base
            except OSError:
                time.sleep(0.2)
        raise AssertionError("serve did not answer within 60 s")

    def __exit__(self, *_: object) -> None:
        self.server.terminate()
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        log = self.log.read_text(encoding="utf-8")
        assert not [secret for secret in self.secrets if secret in log]
