"""Fixtures for the template's tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from helpers import available_pythons, prepare_renders, project_env

if TYPE_CHECKING:
    from pathlib import Path


def pytest_configure(config: pytest.Config) -> None:  # noqa: ARG001 - pytest's signature
    """Before any render: this machine's Pythons, no downloads, llama-cpp-python's wheel."""
    prepare_renders()


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
