"""Model files: what to fetch (models.yaml), fetching it safely, and what is here.

GGUF files come from Hugging Face over plain HTTPS
(`{HF_ENDPOINT}/{repo}/resolve/{revision}/{filename}`; HF_ENDPOINT may name a mirror), pinned by
revision and checked by sha256. Downloads go to `<file>.part`, resume with a Range request
after an interruption, and are renamed into place only once the checksum matches, so a model
file that exists is always complete. A manifest entry without a sha256 is trusted on first use:
the computed digest is recorded in models.lock (next to models.yaml; commit it) and every later
pull verifies against it. No checksum is ever made up.

Ollama models are pulled through Ollama's own HTTP API (`POST /api/pull`, streamed progress),
skipping models Ollama already has.

Core functions report progress through `Progress` and return data; `RichProgress` and
`models_table` are the terminal views.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, Self
from urllib.parse import quote

import httpx
import yaml
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgressBar
from rich.table import Table

from . import __version__
from .bundle import sha256_of
from .runners import ollama
from .settings import APP_COMMAND, AppError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import TracebackType

    from pydantic import SecretStr
    from rich.console import Console
    from rich.progress import TaskID

    from .settings import Settings

CHUNK_BYTES = 1 << 20
_KIB = 1024
HTTP_OK = 200
HTTP_PARTIAL = 206
HTTP_RANGE_NOT_SATISFIABLE = 416
HTTP_UNAUTHORIZED = (401, 403)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (?:(\d+)-\d+|\*)/(\d+|\*)$")


class DownloadError(AppError):
    """A download failed; the message says whether running the command again resumes it."""


class ChecksumMismatchError(AppError):
    """The bytes are not the ones the manifest (or models.lock) pinned."""


# --- manifest -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GgufModel:
    """A GGUF file on Hugging Face, pinned by revision and (ideally) sha256."""

    name: str
    repo: str
    filename: str
    revision: str
    sha256: str | None = None
    size_bytes: int | None = None
    description: str = ""
    license: str = ""

    def url(self, endpoint: str) -> str:
        """The `resolve` URL of the file at its pinned revision."""
        return (
            f"{endpoint.rstrip('/')}/{quote(self.repo)}/resolve/"
            f"{quote(self.revision, safe='')}/{quote(self.filename)}"
        )

    @property
    def lock_key(self) -> str:
        """How models.lock names this file at this revision."""
        return f"{self.repo}/{self.filename}@{self.revision}"


@dataclass(frozen=True)
class RunnerDefaults:
    """The models a runner uses unless settings say otherwise."""

    chat: str | None = None
    embed: str | None = None

    def names(self) -> list[str]:
        """Chat then embedding model, those that are set."""
        return [name for name in (self.chat, self.embed) if name]


@dataclass(frozen=True)
class Manifest:
    """models.yaml: downloadable GGUF files and each runner's default models."""

    path: Path
    gguf: dict[str, GgufModel]
    runners: dict[str, RunnerDefaults]

    @property
    def lock_path(self) -> Path:
        """models.lock beside the manifest."""
        return self.path.with_suffix(".lock")


def load_manifest(path: Path) -> Manifest:
    """Parses models.yaml; errors name the file and the entry."""
    if not path.is_file():
        raise ConfigError(
            f"MODELS_MANIFEST={path}: no such file. Run from the project root or set "
            "MODELS_MANIFEST to models.yaml's path."
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping with `gguf` and `runners`")
    models = {
        name: _gguf_entry(path, str(name), entry) for name, entry in (raw.get("gguf") or {}).items()
    }
    runners: dict[str, RunnerDefaults] = {}
    for runner, value in (raw.get("runners") or {}).items():
        entry = value or {}
        if not isinstance(entry, dict) or set(entry) - {"chat", "embed"}:
            raise ConfigError(f"{path}: runners.{runner} may only have `chat` and `embed`")
        runners[str(runner)] = RunnerDefaults(
            chat=_opt_str(entry.get("chat")), embed=_opt_str(entry.get("embed"))
        )
    for runner in ("embedded", "llamacpp"):
        for name in runners.get(runner, RunnerDefaults()).names():
            if name not in models:
                raise ConfigError(f"{path}: runners.{runner} names {name}, not a `gguf` entry")
    return Manifest(path, models, runners)


def _opt_str(value: object) -> str | None:
    return str(value) if value else None


def _gguf_entry(path: Path, name: str, entry: object) -> GgufModel:
    where = f"{path}: gguf.{name}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping")
    missing = [key for key in ("repo", "filename", "revision") if not entry.get(key)]
    if missing:
        raise ConfigError(f"{where} needs {', '.join(missing)}")
    sha = entry.get("sha256")
    if sha is not None and not _SHA256.match(str(sha).lower()):
        raise ConfigError(f"{where}: sha256 must be 64 hex digits")
    filename = str(entry["filename"])
    if Path(filename).name != filename:
        raise ConfigError(f"{where}: filename must be a plain file name")
    size = entry.get("size_bytes")
    return GgufModel(
        name=name,
        repo=str(entry["repo"]),
        filename=filename,
        revision=str(entry["revision"]),
        sha256=str(sha).lower() if sha else None,
        size_bytes=int(size) if size else None,
        description=str(entry.get("description") or ""),
        license=str(entry.get("license") or ""),
    )


class LockFile:
    """models.lock: sha256 digests recorded on first download (trust on first use)."""

    HEADER = (
        f"# Written by `{APP_COMMAND} models pull`: the sha256 of each model file whose\n"
        "# models.yaml entry has none, recorded on its first download (trust on first use).\n"
        "# Commit this file: every later pull, on any machine, verifies against it.\n"
    )

    def __init__(self, path: Path) -> None:
        self.path = path
        self.digests: dict[str, str] = {}
        if path.is_file():
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(raw, dict):
                raise ConfigError(f"{path} must map files to sha256 digests")
            self.digests = {str(key): str(value) for key, value in raw.items()}

    def get(self, key: str) -> str | None:
        """The recorded digest, if any."""
        return self.digests.get(key)

    def record(self, key: str, digest: str) -> None:
        """Adds a digest and writes the file atomically."""
        self.digests[key] = digest
        temporary = self.path.with_name(self.path.name + ".tmp")
        body = yaml.safe_dump(dict(sorted(self.digests.items())), sort_keys=False)
        temporary.write_text(self.HEADER + body, encoding="utf-8")
        temporary.replace(self.path)


# --- progress -----------------------------------------------------------------------------


class Progress(Protocol):
    """Where downloads report how far they are."""

    def update(self, task: str, completed: int, total: int | None) -> None:
        """`completed` of `total` bytes (total None when unknown) for one named task."""
        ...

    def note(self, message: str) -> None:
        """A line of status text."""
        ...


class NullProgress:
    """Reports nowhere: for tests and non-interactive callers."""

    def update(self, task: str, completed: int, total: int | None) -> None:
        """Ignores progress."""

    def note(self, message: str) -> None:
        """Ignores status text."""


class RichProgress:
    """A Rich progress bar per task (file, or Ollama layer), with speed and time left."""

    def __init__(self, console: Console | None = None) -> None:
        self._bar = RichProgressBar(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Self:
        self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def update(self, task: str, completed: int, total: int | None) -> None:
        """Adds the task's bar on first sight, then moves it."""
        if task not in self._tasks:
            self._tasks[task] = self._bar.add_task(task, total=total, completed=completed)
        else:
            self._bar.update(self._tasks[task], completed=completed, total=total)

    def note(self, message: str) -> None:
        """Prints above the bars."""
        self._bar.console.print(message)


# --- downloads ----------------------------------------------------------------------------


def http_client(settings: Settings) -> httpx.Client:
    """The client for downloads: redirects followed (HF serves files from a CDN), sane timeouts."""
    return httpx.Client(
        headers={"User-Agent": f"{APP_COMMAND}/{__version__}"},
        follow_redirects=True,
        timeout=httpx.Timeout(settings.download_timeout_seconds, connect=10.0),
    )


@dataclass
class _Part:
    """The `.part` file of a download, and the hash of the bytes it holds."""

    path: Path
    size: int
    digest: hashlib._Hash

    @classmethod
    def open(cls, path: Path) -> _Part:
        digest = hashlib.sha256()
        size = 0
        if path.exists():
            with path.open("rb") as handle:
                while block := handle.read(CHUNK_BYTES):
                    digest.update(block)
                    size += len(block)
        return cls(path, size, digest)

    def restart(self) -> None:
        self.path.unlink(missing_ok=True)
        self.size = 0
        self.digest = hashlib.sha256()


def hub_headers(token: SecretStr | None) -> dict[str, str]:
    """Authorization for Hugging Face only (never sent to Ollama). httpx drops it when a
    redirect leaves the hub's origin, so the token does not reach the CDN either.
    """
    return {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}


def download(
    url: str,
    dest: Path,
    *,
    client: httpx.Client,
    expected_sha256: str | None,
    progress: Progress | None = None,
    label: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Fetches `url` into `dest`, resuming `dest.part`; returns the sha256 of the result.

    On a checksum mismatch the partial file is deleted (its bytes cannot be trusted) and
    `ChecksumMismatchError` is raised; on a network error it is kept, so the next call resumes.
    """
    progress = progress or NullProgress()
    label = label or dest.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _Part.open(dest.with_name(dest.name + ".part"))
    for _attempt in range(2):
        try:
            if _fetch(
                url, part, client, progress=progress, label=label, extra_headers=headers or {}
            ):
                break
        except httpx.TransportError as exc:
            raise DownloadError(
                f"download of {label} interrupted after {part.size} bytes ({exc}); "
                "run the same command again to resume"
            ) from None
    else:  # pragma: no cover - _fetch restarts at most once
        raise DownloadError(f"the server kept refusing the download of {label}")
    digest = part.digest.hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        part.restart()
        raise ChecksumMismatchError(
            f"{label}: sha256 {digest} does not match the pinned {expected_sha256}; the partial "
            "file was deleted. If the source changed on purpose, update the pin (models.yaml, "
            "or delete its line in models.lock)."
        )
    part.path.replace(dest)
    return digest


def _fetch(
    url: str,
    part: _Part,
    client: httpx.Client,
    *,
    progress: Progress,
    label: str,
    extra_headers: Mapping[str, str],
) -> bool:
    """One request; True when `part` now holds the whole file, False to start over."""
    # Identity encoding: Range offsets must count the file's bytes, not compressed ones.
    headers = {**extra_headers, "Accept-Encoding": "identity"}
    if part.size:
        headers["Range"] = f"bytes={part.size}-"
    with client.stream("GET", url, headers=headers) as response:
        status = response.status_code
        if status == HTTP_RANGE_NOT_SATISFIABLE and part.size:
            total = _content_range(response.headers.get("Content-Range", ""))[1]
            if total == part.size:
                return True  # the previous attempt got every byte but was not renamed
            part.restart()
            return False
        if status in HTTP_UNAUTHORIZED:
            raise DownloadError(
                f"{url} answered HTTP {status}: the repository may be gated or private. "
                "Accept its license on huggingface.co and set HF_TOKEN."
            )
        if status not in (HTTP_OK, HTTP_PARTIAL):
            raise DownloadError(f"{url} answered HTTP {status}")
        if status == HTTP_PARTIAL:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != part.size:
                part.restart()
                return False
        else:
            if part.size:
                part.restart()  # the server ignored the Range header: start over
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        mode = "ab" if part.size else "wb"
        with part.path.open(mode) as handle:
            progress.update(label, part.size, total)
            for block in response.iter_raw():  # as it arrives: an interruption keeps it
                handle.write(block)
                part.digest.update(block)
                part.size += len(block)
                progress.update(label, part.size, total)
            handle.flush()
            os.fsync(handle.fileno())
    return True


def _content_range(value: str) -> tuple[int | None, int | None]:
    """(start, total) from `bytes START-END/TOTAL` or `bytes */TOTAL`."""
    match = _CONTENT_RANGE.match(value.strip())
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None, int(total) if total and total != "*" else None)


# --- pulling ------------------------------------------------------------------------------

PullStatus = Literal["downloaded", "present", "pulled"]


@dataclass(frozen=True)
class PullResult:
    """What one pull did."""

    name: str
    status: PullStatus
    location: str
    detail: str = ""


def pull_gguf(
    model: GgufModel,
    *,
    models_dir: Path,
    endpoint: str,
    client: httpx.Client,
    lock: LockFile,
    progress: Progress | None = None,
    token: SecretStr | None = None,
) -> PullResult:
    """Downloads the file unless a verified copy is there; records a first-use digest."""
    progress = progress or NullProgress()
    dest = models_dir / model.filename
    expected = model.sha256 or lock.get(model.lock_key)
    if dest.is_file():
        digest = sha256_of(dest)
        if expected is None:
            lock.record(model.lock_key, digest)
            return PullResult(
                model.name, "present", str(dest), f"sha256 recorded in {lock.path.name}"
            )
        if digest != expected:
            raise ChecksumMismatchError(
                f"{dest} exists but its sha256 {digest} is not the pinned {expected}: "
                "delete it and pull again"
            )
        return PullResult(model.name, "present", str(dest), "sha256 verified")
    digest = download(
        model.url(endpoint),
        dest,
        client=client,
        expected_sha256=expected,
        progress=progress,
        label=model.filename,
        headers=hub_headers(token),
    )
    if expected is None:
        lock.record(model.lock_key, digest)
        return PullResult(
            model.name,
            "downloaded",
            str(dest),
            f"no sha256 pinned: recorded {digest[:12]}... in {lock.path.name} (trust on first use)",
        )
    return PullResult(model.name, "downloaded", str(dest), "sha256 verified")


def pull_ollama(
    name: str, *, base_url: str, client: httpx.Client, progress: Progress | None = None
) -> PullResult:
    """Asks Ollama to pull a model, streaming its progress; a no-op when Ollama has it."""
    progress = progress or NullProgress()
    try:
        if not ollama.missing_models(ollama.list_models(client, base_url), [name]):
            return PullResult(name, "present", base_url, "Ollama already has it")
        for event in _ollama_events(client, base_url, name):
            if "error" in event:
                raise DownloadError(f"Ollama could not pull {name}: {event['error']}")
            status = str(event.get("status", ""))
            if status == "success":
                return PullResult(name, "pulled", base_url)
            total = event.get("total")
            if isinstance(total, int):
                task = f"{name} {str(event.get('digest', ''))[7:19]}".strip()
                completed = event.get("completed")
                progress.update(task, completed if isinstance(completed, int) else 0, total)
            elif status:
                progress.note(f"{name}: {status}")
    except httpx.TransportError as exc:
        raise DownloadError(
            f"cannot reach Ollama at {base_url} ({exc}): start it with `ollama serve`, "
            "then run the same command again"
        ) from None
    except httpx.HTTPStatusError as exc:
        raise DownloadError(f"Ollama at {base_url} answered {exc.response.status_code}") from None
    raise DownloadError(f"Ollama stopped streaming before it finished pulling {name}")


def _ollama_events(client: httpx.Client, base_url: str, name: str) -> Iterator[dict[str, object]]:
    """The NDJSON progress events of `POST /api/pull` (no read timeout: layers are large)."""
    timeout = httpx.Timeout(10.0, read=None)
    body = {"model": name, "stream": True}
    with client.stream("POST", f"{base_url}/api/pull", json=body, timeout=timeout) as response:
        if response.status_code != HTTP_OK:
            response.read()
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise DownloadError(f"Ollama could not pull {name}: {message}")
        for line in response.iter_lines():
            if line.strip():
                event = json.loads(line)
                if isinstance(event, dict):
                    yield event


def default_pulls(settings: Settings, manifest: Manifest) -> list[str]:
    """What `models pull` fetches with no names: the chosen runner's models."""
    names = manifest.runners.get(settings.model_runner, RunnerDefaults()).names()
    if settings.model_runner == "ollama":
        names += [n for n in ollama.wanted_models(settings) if n not in names]
    return names


def pull(
    settings: Settings,
    names: Sequence[str] = (),
    *,
    client: httpx.Client,
    progress: Progress | None = None,
) -> list[PullResult]:
    """Pulls named models (manifest GGUF names, else Ollama names), or the runner's defaults."""
    manifest = load_manifest(settings.models_manifest)
    lock = LockFile(manifest.lock_path)
    wanted = list(names) or default_pulls(settings, manifest)
    results: list[PullResult] = []
    for name in wanted:
        if name in manifest.gguf:
            results.append(
                pull_gguf(
                    manifest.gguf[name],
                    models_dir=settings.models_dir,
                    endpoint=settings.hf_endpoint,
                    client=client,
                    lock=lock,
                    progress=progress,
                    token=settings.hf_token,
                )
            )
        else:
            results.append(
                pull_ollama(
                    name, base_url=settings.ollama_base_url, client=client, progress=progress
                )
            )
    return results


# --- listing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRow:
    """One configured model: where it is, whether it is there, how big, whether in use."""

    name: str
    kind: Literal["gguf", "ollama", "hosted"]
    location: str
    present: bool | None
    size_bytes: int | None
    in_use: bool
    detail: str = ""


def _same_file(a: Path | None, b: Path) -> bool:
    return a is not None and a.expanduser().resolve() == b.expanduser().resolve()


def list_models(settings: Settings, *, client: httpx.Client | None = None) -> list[ModelRow]:
    """Every model the manifest or settings mention; Ollama is asked only if a client is given."""
    manifest = load_manifest(settings.models_manifest)
    lock = LockFile(manifest.lock_path)
    local = settings.model_runner in ("embedded", "llamacpp")
    in_use_paths = (settings.gguf_model_path, settings.embedding_gguf_path)
    rows: list[ModelRow] = []
    for model in manifest.gguf.values():
        path = settings.models_dir / model.filename
        present = path.is_file()
        pin = (
            "sha256 pinned"
            if model.sha256
            else ("sha256 in models.lock" if lock.get(model.lock_key) else "no sha256 yet (TOFU)")
        )
        rows.append(
            ModelRow(
                name=model.name,
                kind="gguf",
                location=str(path),
                present=present,
                size_bytes=path.stat().st_size if present else model.size_bytes,
                in_use=local and any(_same_file(p, path) for p in in_use_paths),
                detail=f"{model.repo}@{model.revision}, {pin}",
            )
        )
    listed = {Path(row.location).resolve() for row in rows}
    for variable, configured in zip(
        ("GGUF_MODEL_PATH", "EMBEDDING_GGUF_PATH"), in_use_paths, strict=True
    ):
        if configured is not None and configured.expanduser().resolve() not in listed:
            present = configured.is_file()
            rows.append(
                ModelRow(
                    name=configured.name,
                    kind="gguf",
                    location=str(configured),
                    present=present,
                    size_bytes=configured.stat().st_size if present else None,
                    in_use=local,
                    detail=f"from {variable}, not in {manifest.path.name}",
                )
            )
    rows += _ollama_rows(settings, manifest, client)
    if settings.hosted_model:
        rows.append(
            ModelRow(
                name=settings.hosted_model,
                kind="hosted",
                location=settings.hosted_api_base or "provider",
                present=None,
                size_bytes=None,
                in_use=settings.model_runner == "hosted",
                detail="served by the provider",
            )
        )
    return rows


def _ollama_rows(
    settings: Settings, manifest: Manifest, client: httpx.Client | None
) -> list[ModelRow]:
    names = manifest.runners.get("ollama", RunnerDefaults()).names()
    names += [name for name in ollama.wanted_models(settings) if name not in names]
    available: list[str] | None = None
    detail = "Ollama not asked"
    if client is not None:
        try:
            available = ollama.list_models(client, settings.ollama_base_url)
            detail = ""
        except (httpx.HTTPError, ValueError) as exc:
            detail = f"Ollama unreachable: {exc}"
    wanted = ollama.wanted_models(settings)
    return [
        ModelRow(
            name=name,
            kind="ollama",
            location=settings.ollama_base_url,
            present=None if available is None else not ollama.missing_models(available, [name]),
            size_bytes=None,
            in_use=settings.model_runner == "ollama" and name in wanted,
            detail=detail,
        )
        for name in names
    ]


# --- terminal views -----------------------------------------------------------------------


def human_size(size: int | None) -> str:
    """Bytes as KiB/MiB/GiB."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < _KIB or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= _KIB
    return f"{value:.1f} GiB"  # pragma: no cover - loop always returns


def models_table(rows: Sequence[ModelRow]) -> Table:
    """`models list` as a table."""
    table = Table(title="Models")
    for column in ("", "name", "kind", "present", "size", "location", "detail"):
        table.add_column(column)
    marks = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "[dim]?[/dim]"}
    for row in rows:
        table.add_row(
            "*" if row.in_use else "",
            row.name,
            row.kind,
            marks[row.present],
            human_size(row.size_bytes),
            row.location,
            row.detail,
        )
    table.caption = "* = used by the current settings"
    return table
