"""Render a matrix of answers and run each generated project's own gates, for real."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from helpers import (
    PYTHON_VERSIONS,
    ROOT,
    TEMPLATE_DEFAULT_PYTHON,
    available_pythons,
    listing,
    render,
    rotate,
    run,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

# Generated projects run on the Pythons this machine has (tests never download one); every
# supported version is still rendered by test_every_python_version_renders.
OPTIONS: dict[str, list[Any]] = {
    "python_version": available_pythons() or [TEMPLATE_DEFAULT_PYTHON],
    "license": ["MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"],
    "ci": ["github", "gitlab", "none"],
    "model_runner": ["embedded", "llamacpp", "ollama", "hosted"],
    "vector_store": ["sqlite", "pgvector"],
    "with_api": [True, False],
    "trace_ui": ["jaeger", "phoenix", "none"],
}
MATRIX = rotate(OPTIONS)
RAW_LEFTOVER = re.compile(r"\{%-? *(end)?raw|\{\{ *(package_name|project_slug)")
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|%\}|\{#|#\}")
TEMPLATE = ROOT / "template"
PLANTED_KEY = "sk-matrix-0000"  # pragma: allowlist secret
PACKAGE_DIR = "{{ package_name }}"
# Every file whose name is conditional, and the answers that make it appear.
CONDITIONAL: dict[str, Callable[[dict[str, Any]], bool]] = {
    ".github/workflows/ci.yml": lambda a: a["ci"] == "github",
    ".github/dependabot.yml": lambda a: a["ci"] == "github",
    ".github/workflows/template-update.yml": lambda a: a["ci"] == "github",
    ".gitlab-ci.yml": lambda a: a["ci"] == "gitlab",
    "LICENSE": lambda a: bool(a["license"]),
    "src/{pkg}/api.py": lambda a: a["with_api"],
    "src/{pkg}/static/app.js": lambda a: a["with_api"],
    "src/{pkg}/static/index.html": lambda a: a["with_api"],
    "src/{pkg}/static/style.css": lambda a: a["with_api"],
    "tests/test_api_app.py": lambda a: a["with_api"],
    "tests/test_chat_page_browser.py": lambda a: a["with_api"],
    "compose.pgvector.yaml": lambda a: a["vector_store"] == "pgvector",
    "tests/test_api_ops.py": lambda a: a["with_api"],
    "compose.traces.yaml": lambda a: a["trace_ui"] != "none",
}
# Written by the post-copy tasks, not by a template file.
GENERATED = {".copier-answers.yml", "uv.lock"}


def plain_template_files() -> set[str]:
    """Template files whose names carry no condition, as they are named once rendered."""
    names = set()
    for path in TEMPLATE.rglob("*"):
        relative = path.relative_to(TEMPLATE).as_posix()
        if not path.is_file() or "{%" in relative or "_copier_conf" in relative:
            continue
        names.add(relative.removesuffix(".jinja").replace(PACKAGE_DIR, "{pkg}"))
    return names


def rendered_files(package: str) -> dict[str, bool]:
    """Files rendered from a ``.jinja`` template, and whether it protects text with raw blocks.

    Other files are copied verbatim, braces and all, so only these can hold leftover tags.
    """
    return {
        path.relative_to(TEMPLATE)
        .as_posix()
        .removesuffix(".jinja")
        .replace(PACKAGE_DIR, package): "{% raw %}" in path.read_text(encoding="utf-8")
        for path in TEMPLATE.rglob("*.jinja")
        if "{%" not in path.relative_to(TEMPLATE).as_posix() and "_copier_conf" not in path.name
    }


def expected_files(answers: dict[str, Any], package: str) -> set[str]:
    """The exact file set a rendering with these answers must produce."""
    names = plain_template_files() | GENERATED
    names |= {name for name, wanted in CONDITIONAL.items() if wanted(answers)}
    return {name.format(pkg=package) for name in names}


def test_every_conditional_file_is_known() -> None:
    conditional = {
        path.relative_to(TEMPLATE).as_posix()
        for path in TEMPLATE.rglob("*")
        if path.is_file() and "{%" in path.relative_to(TEMPLATE).as_posix()
    }
    # licenses, CI files, API files, pgvector, trace UIs
    assert len(conditional) == 4 + 4 + 7 + 1 + 2
    assert all(("{% if" in name) for name in conditional)


def test_matrix_covers_every_value() -> None:
    for option, values in OPTIONS.items():
        assert {combo[option] for combo in MATRIX} == set(values), option


def test_the_default_python_is_the_one_helpers_assume() -> None:
    questions = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
    assert questions["python_version"]["default"] == TEMPLATE_DEFAULT_PYTHON
    assert list(questions["python_version"]["choices"]) == list(PYTHON_VERSIONS)


@pytest.mark.parametrize("version", PYTHON_VERSIONS)
def test_every_python_version_renders(tmp_path: Path, version: str) -> None:
    project = render(tmp_path / "p", {"python_version": version}, skip_tasks=True)
    assert (project / ".python-version").read_text(encoding="utf-8").strip() == version
    pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert f'requires-python = ">={version}"' in pyproject
    assert f'target-version = "py{version.replace(".", "")}"' in pyproject
    assert f'python_version = "{version}"' in pyproject


@pytest.mark.slow
@pytest.mark.parametrize(
    "answers", MATRIX, ids=["-".join(str(v) for v in combo.values()) for combo in MATRIX]
)
def test_rendered_project_passes_its_own_gates(
    tmp_path: Path, env: dict[str, str], answers: dict[str, Any]
) -> None:
    name = f"Sample {answers['license']} {answers['ci']}"
    hosted = answers["model_runner"] == "hosted"
    secret = {"hosted_api_key": PLANTED_KEY} if hosted else {}
    project = render(tmp_path / "project", {"project_name": name, **answers, **secret})
    package = "sample_" + "_".join(
        re.split(r"[^a-z0-9]+", f"{answers['license']} {answers['ci']}".lower())
    ).strip("_")

    assert listing(project) == expected_files(answers, package)
    for name, raw in rendered_files(package).items():
        text = (project / name).read_text(encoding="utf-8", errors="replace")
        if raw:  # the source keeps braces of its own inside {% raw %}: look for our tags only
            assert not RAW_LEFTOVER.search(text), f"leftover Jinja in {name}"
        else:
            assert not LEFTOVER_JINJA.search(text), f"leftover Jinja in {name}"
    assert not [name for name in listing(project) if LEFTOVER_JINJA.search(name)]

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

    assert f"MODEL_RUNNER={answers['model_runner']}" in (project / ".env").read_text("utf-8")
    if secret:
        assert PLANTED_KEY in (project / ".env").read_text(encoding="utf-8")
        assert PLANTED_KEY not in (project / ".copier-answers.yml").read_text("utf-8")
    run(["make", "setup"], project, env)
    python = run(["uv", "run", "python", "-c", "import sys; print(sys.version)"], project, env)
    assert python.stdout.startswith(answers["python_version"])
    run(["make", "check"], project, env)
    evaluated = run(["make", "eval-fake"], project, env)
    assert (project / "build/evals/junit.xml").is_file()
    if secret:
        written = [project / "data/traces.jsonl", *(project / "build/evals").iterdir()]
        for path in written:
            assert PLANTED_KEY not in path.read_text(encoding="utf-8"), path
        assert PLANTED_KEY not in evaluated.stdout + evaluated.stderr
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
            "make eval-fake",
            'cat build/evals/summary.md >> "$GITHUB_STEP_SUMMARY"',
            "make pre-commit",
            "make docs",
        ]
        real = workflow["jobs"]["eval-real-model"]
        assert real["if"] == "github.event_name == 'workflow_dispatch'"
        assert [s["run"] for s in real["steps"] if "run" in s][1:4] == [
            "make models-pull",
            "make probe",
            "make eval",
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
        assert pipeline["check"]["script"] == [
            "make check",
            "make eval-fake",
            "make pre-commit",
            "make docs",
        ]
        assert pipeline["check"]["artifacts"]["reports"]["junit"] == "build/evals/junit.xml"
        assert pipeline["eval-real-model"]["script"] == [
            "make models-pull",
            "make probe",
            "make eval",
        ]
