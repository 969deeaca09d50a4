"""Fixtures for the template's tests."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from helpers import TEMPLATE_VENV_BIN, available_pythons, prepare_renders, project_env

if TYPE_CHECKING:
    from pathlib import Path


def pytest_configure(config: pytest.Config) -> None:  # noqa: ARG001 - pytest's signature
    """Before any render: this machine's Pythons, no downloads, llama-cpp-python's wheel."""
    prepare_renders()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """After the run (once, not per worker): drop what uv's cache can no longer use.

    Locking a project unpacks llama-cpp-python's source (about 200 MB) to read its metadata, and
    an index that sends no caching headers makes uv unpack it again next time, leaving the old
    copy behind. A full run would grow the user's cache by gigabytes; ``uv cache prune`` removes
    only such unreachable entries, never a wheel or source uv still points to.
    """
    if hasattr(session.config, "workerinput") or session.config.option.collectonly:
        return
    subprocess.run(
        [str(TEMPLATE_VENV_BIN / "uv"), "cache", "prune", "--quiet"], check=False, timeout=600
    )


def pytest_report_header() -> str:
    """Which Pythons generated projects run on here (the others are rendered only)."""
    return f"generated projects run on Python {', '.join(available_pythons()) or 'none found'}"


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    """Environment for commands run in generated projects (interpreters, uv, offline flags)."""
    return project_env(require_everything=True)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch folder per test."""
    return tmp_path
