"""Preflight checks: is this machine and this configuration ready to run the app?

Each check returns a `Check` row (pass, warn or fail, what was found, and the fix), so the rows
can be shown as a table, returned by an API, or asserted on in tests. Everything the checks
learn about the machine comes through `System`, which tests replace.
"""

from __future__ import annotations

import os
import platform
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx
from rich.table import Table

from .models import human_size
from .runners import Status, get_runner, gguf
from .runners.deployments import load_llm_config, plan
from .settings import APP_COMMAND, ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .settings import Settings

GIB = 1 << 30
MIN_PYTHON = (3, 11)
MIN_FREE_DISK = 1 * GIB
LOW_FREE_DISK = 5 * GIB
MIN_MEMORY = 2 * GIB


@dataclass(frozen=True)
class Check:
    """One row of the doctor's report."""

    name: str
    status: Status
    detail: str
    fix: str = ""


class System(Protocol):
    """What the checks may ask of the machine."""

    def python_version(self) -> tuple[int, int, int]:
        """The running interpreter's version."""
        ...

    def which(self, program: str) -> str | None:
        """The program's path on PATH, if any."""
        ...

    def run(self, argv: Sequence[str]) -> tuple[int, str] | None:
        """Exit code and first line of output; None when it could not run in time."""
        ...

    def exists(self, path: Path) -> bool:
        """Whether a path exists (device files included)."""
        ...

    def platform(self) -> tuple[str, str]:
        """(system, machine), e.g. ("Linux", "x86_64") or ("Darwin", "arm64")."""
        ...

    def memory(self) -> tuple[int | None, int | None]:
        """(total, available) bytes of RAM, None where unknown."""
        ...

    def free_disk(self, path: Path) -> int:
        """Free bytes on the file system holding `path` (or its nearest existing parent)."""
        ...


class LocalSystem:
    """The machine this process runs on."""

    timeout_seconds = 10.0

    def python_version(self) -> tuple[int, int, int]:
        """`sys.version_info`."""
        return sys.version_info[0], sys.version_info[1], sys.version_info[2]

    def which(self, program: str) -> str | None:
        """`shutil.which`."""
        return shutil.which(program)

    def run(self, argv: Sequence[str]) -> tuple[int, str] | None:
        """Runs a fixed command (never a shell) with a timeout."""
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv from this module, no shell
                list(argv),
                capture_output=True,
                text=True,
                timeout=self.timeout_seconds,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        output = (done.stdout or done.stderr).strip().splitlines()
        return done.returncode, output[0] if output else ""

    def exists(self, path: Path) -> bool:
        """`Path.exists`."""
        return path.exists()

    def platform(self) -> tuple[str, str]:
        """`platform.system()`, `platform.machine()`."""
        return platform.system(), platform.machine()

    def memory(self) -> tuple[int | None, int | None]:
        """/proc/meminfo on Linux; sysconf elsewhere (no 'available' figure there)."""
        meminfo = Path("/proc/meminfo")
        if meminfo.is_file():
            fields = {
                line.split(":")[0]: int(line.split()[1]) * 1024
                for line in meminfo.read_text().splitlines()
                if line.split()[1:2] and line.split()[1].isdigit()
            }
            return fields.get("MemTotal"), fields.get("MemAvailable")
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), None
        except (ValueError, OSError, AttributeError):
            return None, None

    def free_disk(self, path: Path) -> int:
        """`shutil.disk_usage` of the nearest existing directory."""
        probe = path.expanduser().absolute()
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        return shutil.disk_usage(probe).free


def _gib(size: int) -> str:
    return f"{size / GIB:.1f} GiB"


def check_python(system: System) -> Check:
    """The app needs Python 3.11 or newer."""
    version = system.python_version()
    shown = ".".join(map(str, version))
    if version[:2] >= MIN_PYTHON:
        return Check("python", "pass", f"Python {shown}")
    return Check(
        "python",
        "fail",
        f"Python {shown} is older than {'.'.join(map(str, MIN_PYTHON))}",
        "install Python 3.11+ (uv python install 3.12, pyenv, or your OS packages)",
    )


def check_uv(system: System) -> Check:
    """uv installs the locked dependencies (`make setup`)."""
    if system.which("uv") is None:
        return Check(
            "uv", "warn", "uv not found on PATH", "pip install uv (or see docs.astral.sh/uv)"
        )
    result = system.run(["uv", "--version"])
    version = result[1] if result and result[0] == 0 else "version unknown"
    return Check("uv", "pass", version)


def check_container_engine(system: System) -> Check:
    """Docker or Podman, with an engine that answers (a client alone cannot run `make up`)."""
    found: list[str] = []
    for engine in ("docker", "podman"):
        if system.which(engine) is None:
            continue
        found.append(engine)
        result = system.run([engine, "info", "--format", "{{.ServerVersion}}"])
        if result is not None and result[0] == 0:
            return Check("containers", "pass", f"{engine} engine {result[1] or 'running'}")
    if found:
        return Check(
            "containers",
            "warn",
            f"{' and '.join(found)} found, but no engine answers",
            "start Docker Desktop / the docker service, or `podman machine start`; "
            "check DOCKER_HOST",
        )
    return Check(
        "containers",
        "warn",
        "neither docker nor podman found (needed for `make up`, not for local runs)",
        "install Docker Desktop, Docker Engine, or Podman",
    )


def check_gpu(system: System) -> Check:
    """An accelerator is optional: the default model runs on a CPU."""
    if system.which("nvidia-smi") is not None:
        result = system.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
        )
        if result is not None and result[0] == 0 and result[1]:
            return Check("gpu", "pass", f"NVIDIA {result[1]}")
        return Check(
            "gpu",
            "warn",
            "nvidia-smi found but it reports no GPU",
            "check the NVIDIA driver; without it models run on the CPU",
        )
    if system.exists(Path("/dev/kfd")):
        return Check("gpu", "pass", "AMD GPU (ROCm /dev/kfd)")
    system_name, machine = system.platform()
    if system_name == "Darwin" and machine == "arm64":
        return Check("gpu", "pass", "Apple Silicon (Metal)")
    return Check("gpu", "pass", "none found: CPU mode (the default small model runs on CPU)")


def _model_bytes(settings: Settings) -> int:
    paths = (settings.gguf_model_path, settings.embedding_gguf_path)
    return sum(p.stat().st_size for p in {p for p in paths if p is not None and p.is_file()})


def check_memory(system: System, settings: Settings) -> Check:
    """Enough RAM for the in-process model(s) plus the app."""
    total, available = system.memory()
    if total is None:
        return Check("memory", "warn", "could not read the amount of RAM")
    need = MIN_MEMORY
    if settings.model_runner == "embedded":
        need = max(MIN_MEMORY, 2 * _model_bytes(settings) + GIB)
    detail = f"{_gib(total)} total" + (f", {_gib(available)} available" if available else "")
    if total < need:
        return Check(
            "memory",
            "fail",
            f"{detail}; about {_gib(need)} needed",
            "use a smaller model, or MODEL_RUNNER=hosted",
        )
    if available is not None and available < need:
        return Check(
            "memory",
            "warn",
            f"{detail}; about {_gib(need)} needed",
            "close other applications before starting the app",
        )
    return Check("memory", "pass", detail)


def check_disk(system: System, settings: Settings) -> Check:
    """Free space where models are downloaded."""
    free = system.free_disk(settings.models_dir)
    detail = f"{_gib(free)} free at {settings.models_dir}"
    if free < MIN_FREE_DISK:
        return Check("disk", "fail", detail, "free up space, or point MODELS_DIR elsewhere")
    if free < LOW_FREE_DISK:
        return Check("disk", "warn", detail, "larger models need several GiB")
    return Check("disk", "pass", detail)


def check_model_files(settings: Settings) -> list[Check]:
    """The GGUF files the embedded runner loads (the llama.cpp runner's, when named)."""
    if settings.model_runner not in ("embedded", "llamacpp"):
        return []
    checks: list[Check] = []
    pull = f"{APP_COMMAND} models pull"
    for variable, path in (
        ("GGUF_MODEL_PATH", settings.gguf_model_path),
        ("EMBEDDING_GGUF_PATH", settings.embedding_gguf_path),
    ):
        name = f"model file ({variable})"
        if path is None:
            if variable == "GGUF_MODEL_PATH" and settings.model_runner == "embedded":
                checks.append(
                    Check(name, "fail", "not set", f"{pull}, then set {variable} (.env.example)")
                )
            elif variable == "EMBEDDING_GGUF_PATH":
                checks.append(Check(name, "pass", "not set: retrieval is lexical only"))
            continue
        if not path.is_file():
            checks.append(Check(name, "fail", f"{path} does not exist", pull))
        elif not gguf.is_gguf(path):
            checks.append(Check(name, "fail", f"{path} is not a GGUF file", f"delete it; {pull}"))
        else:
            checks.append(Check(name, "pass", f"{path} ({human_size(path.stat().st_size)})"))
    return checks


def check_llm_config(settings: Settings) -> Check:
    """llm.yaml parses, and has deployments for the chosen runner whose variables are set."""
    try:
        config = load_llm_config(settings.llm_config)
        plan(config, settings, get_runner(settings.model_runner), None)
    except ConfigError as exc:
        return Check("llm config", "fail", str(exc), "fix llm.yaml or the variables it names")
    return Check(
        "llm config", "pass", f"{settings.llm_config}: MODEL_RUNNER={settings.model_runner}"
    )


def check_runner(settings: Settings, client: httpx.Client) -> Check:
    """The runner answers (HTTP for llama.cpp and Ollama) and has its model."""
    runner = get_runner(settings.model_runner)
    health = runner.health(settings, client)
    return Check(f"runner ({runner.name})", health.status, health.detail, health.fix)


def check_secrets(settings: Settings) -> list[Check]:
    """Secrets the configuration needs are set; names only, never values."""
    missing = settings.missing_secrets()
    checks = [
        Check(
            f"secret {req.variable}",
            "fail",
            req.reason,
            f"set {req.variable} in the environment, in .env, or as a file "
            f"{req.variable.lower()} in the secrets directory (SECRETS_DIR)",
        )
        for req in missing
    ]
    if not missing:
        checks.append(Check("secrets", "pass", f"all set for MODEL_RUNNER={settings.model_runner}"))
    return checks


def check_env_file(path: Path = Path(".env")) -> list[Check]:
    """A .env holding secrets should be readable by its owner only."""
    if not path.is_file():
        return []
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return [Check(".env permissions", "warn", f"{path} is mode {mode:o}", f"chmod 600 {path}")]
    return [Check(".env permissions", "pass", f"{path} is mode {mode:o}")]


def run_checks(
    settings: Settings,
    *,
    system: System | None = None,
    client: httpx.Client | None = None,
) -> list[Check]:
    """Every check, in the order a person would fix things."""
    system = system or LocalSystem()
    own_client = client is None
    client = client or httpx.Client(timeout=3.0)
    try:
        return [
            check_python(system),
            check_uv(system),
            check_container_engine(system),
            check_gpu(system),
            check_memory(system, settings),
            check_disk(system, settings),
            *check_secrets(settings),
            *check_env_file(),
            check_llm_config(settings),
            *check_model_files(settings),
            check_runner(settings, client),
        ]
    finally:
        if own_client:
            client.close()


def exit_code(checks: Sequence[Check]) -> int:
    """1 when any check failed, else 0 (warnings do not fail a preflight)."""
    return 1 if any(check.status == "fail" for check in checks) else 0


def doctor_table(checks: Sequence[Check]) -> Table:
    """The report as a Rich table."""
    table = Table(title="doctor")
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    style = {"pass": "green", "warn": "yellow", "fail": "bold red"}
    for check in checks:
        status = f"[{style[check.status]}]{check.status}[/{style[check.status]}]"
        table.add_row(check.name, status, check.detail, check.fix)
    return table


def doctor_checklist(checks: Sequence[Check], *, title: str = "Workshop preflight") -> str:
    """The report as a Markdown checklist to print or paste: ticked when passed, with the fix.

    Warnings are ticked too (they do not block), and marked so a facilitator sees them.
    """
    lines = [f"# {title}", ""]
    for check in checks:
        box = "[ ]" if check.status == "fail" else "[x]"
        mark = {"pass": "", "warn": " (warning)", "fail": " (FAIL)"}[check.status]
        lines.append(f"- {box} **{check.name}**{mark}: {check.detail}")
        if check.fix and check.status != "pass":
            lines.append(f"  - fix: {check.fix}")
    failed = sum(check.status == "fail" for check in checks)
    lines += ["", "Ready." if not failed else f"{failed} to fix before the workshop."]
    return "\n".join(lines) + "\n"
