"""Fixtures for the template's tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from helpers import project_env, python_shims, use_wheelhouse

if TYPE_CHECKING:
    from pathlib import Path


def pytest_configure(config: pytest.Config) -> None:  # noqa: ARG001 - pytest's signature
    """Before any render: generated projects install llama-cpp-python from the wheelhouse."""
    use_wheelhouse()


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for commands run in generated projects (interpreters, uv, offline flags)."""
    shims = python_shims(tmp_path_factory.mktemp("python-shims"))
    return project_env(shims)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch folder per test."""
    return tmp_path
