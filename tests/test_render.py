"""Render a matrix of answers and run each generated project's own gates, for real."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from helpers import listing, render, rotate, run

if TYPE_CHECKING:
    from pathlib import Path

OPTIONS: dict[str, list[Any]] = {
    "python_version": ["3.11", "3.12", "3.13"],
    "license": ["MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"],
    "ci": ["github", "gitlab", "none"],
}
MATRIX = rotate(OPTIONS)
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|%\}|\{#|#\}")

BASE_FILES = {
    ".copier-answers.yml",
    ".editorconfig",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".python-version",
    ".secrets.baseline",
    "CHANGELOG.md",
    "LICENSE",
    "Makefile",
    "README.md",
    "docs/development.md",
    "docs/index.md",
    "mkdocs.yml",
    "pyproject.toml",
    "uv.lock",
    "src/{pkg}/__init__.py",
    "src/{pkg}/__main__.py",
    "src/{pkg}/cli.py",
    "src/{pkg}/py.typed",
    "tests/test_cli.py",
}
CI_FILES = {
    "github": {".github/workflows/ci.yml", ".github/dependabot.yml"},
    "gitlab": {".gitlab-ci.yml"},
    "none": set(),
}


def expected_files(answers: dict[str, Any], package: str) -> set[str]:
    """The exact file set a rendering with these answers must produce."""
    files = {name.format(pkg=package) for name in BASE_FILES}
    return files | CI_FILES[answers["ci"]]


def test_matrix_covers_every_value() -> None:
    for option, values in OPTIONS.items():
        assert {combo[option] for combo in MATRIX} == set(values), option


@pytest.mark.slow
@pytest.mark.parametrize(
    "answers", MATRIX, ids=["-".join(str(v) for v in combo.values()) for combo in MATRIX]
)
def test_rendered_project_passes_its_own_gates(
    tmp_path: Path, env: dict[str, str], answers: dict[str, Any]
) -> None:
    name = f"Sample {answers['license']} {answers['ci']}"
    project = render(tmp_path / "project", {"project_name": name, **answers})
    package = "sample_" + "_".join(
        re.split(r"[^a-z0-9]+", f"{answers['license']} {answers['ci']}".lower())
    ).strip("_")

    assert listing(project) == expected_files(answers, package)
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not LEFTOVER_JINJA.search(text), f"leftover Jinja in {path}"

    license_text = (project / "LICENSE").read_text(encoding="utf-8")
    assert {
        "MIT": "MIT License",
        "Apache-2.0": "Apache License",
        "BSD-3-Clause": "BSD 3-Clause",
        "Proprietary": "All rights reserved",
    }[answers["license"]] in license_text
    assert (project / ".python-version").read_text(encoding="utf-8").strip() == answers[
        "python_version"
    ]

    run(["make", "setup"], project, env)
    python = run(["uv", "run", "python", "-c", "import sys; print(sys.version)"], project, env)
    assert python.stdout.startswith(answers["python_version"])
    run(["make", "check"], project, env)
    run(["git", "add", "--all"], project, env)
    run(["make", "pre-commit"], project, env)
    run(["make", "docs"], project, env)

    if answers["ci"] == "github":
        run(["uv", "run", "--locked", "zizmor", "--offline", ".github/workflows"], project, env)
        workflow = yaml.safe_load(
            (project / ".github/workflows/ci.yml").read_text(encoding="utf-8")
        )
        assert workflow["permissions"] == {}
        steps = workflow["jobs"]["check"]["steps"]
        assert all(re.search(r"@[0-9a-f]{40}$", s["uses"]) for s in steps if "uses" in s)
        assert [s["run"] for s in steps if "run" in s] == [
            "make setup",
            "make check",
            "make pre-commit",
            "make docs",
        ]
    if answers["ci"] == "gitlab":
        run(
            [
                "uv",
                "run",
                "--locked",
                "check-jsonschema",
                "--builtin-schema",
                "vendor.gitlab-ci",
                ".gitlab-ci.yml",
            ],
            project,
            env,
        )
        pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text(encoding="utf-8"))
        assert pipeline["check"]["script"] == ["make check", "make pre-commit", "make docs"]
