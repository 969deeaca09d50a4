"""`copier update` from released versions to the working tree keeps a team's edits: in `make test`
from the first release of each span the update treats alike and the latest, in `make test-updates`
from every release."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from typing import TYPE_CHECKING, Any

import copier
import pytest
import yaml

from helpers import listing, render, run
from releases import Release, releases, scratch_template

if TYPE_CHECKING:
    from pathlib import Path

MARKER = re.compile(r"^(<<<<<<<|>>>>>>>) ", re.MULTILINE)
TRACE_UI_SINCE = (0, 4, 0)  # the first release that asks `trace_ui`
AI_CORE_SINCE = (0, 2, 0)  # the first release with a .env
RUNNERS_SINCE = (0, 6, 0)  # `runners` and the feature questions replace `model_runner`


def releases_to_update() -> list[Release]:
    """The releases `make test` updates from: the first of each earlier span the update treats
    alike (before a .env, before `trace_ui`, before `runners`) and the latest. The matrix grows
    with every release and the paths it takes do not; `make test-updates`
    (UPDATE_FROM_EVERY_RELEASE=1) updates from every one."""
    every = releases()
    if os.environ.get("UPDATE_FROM_EVERY_RELEASE"):
        return every
    spans = (AI_CORE_SINCE, TRACE_UI_SINCE, RUNNERS_SINCE)
    firsts: dict[int, Release] = {}
    for release in every[:-1]:
        span = sum(release.version_tuple >= since for since in spans)
        if span < len(spans):  # the latest stands for the span it is in
            firsts.setdefault(span, release)
    return [*firsts.values(), every[-1]]


TEAM_MODULE = '''"""Our own code: the template must never touch it."""


def greeting(name: str) -> str:
    """Say hello."""
    return f"Hello, {name}!"
'''
TEAM_TEST = """from {package}.team_extras import greeting


def test_greeting() -> None:
    assert greeting("team") == "Hello, team!"
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch clone of the template with its release tags."""
    return scratch_template(tmp_path_factory.mktemp("template") / "repo")


def commit(project: Path, env: dict[str, str], message: str) -> None:
    run(["git", "add", "--all"], project, env)
    run(["git", "commit", "--quiet", "--no-verify", "-m", message], project, env)


def update(project: Path, answers: dict[str, Any] | None = None) -> None:
    """`copier update` to the working tree, non-interactive, changing ``answers`` on the way."""
    copier.run_update(
        str(project),
        data=answers or {},
        defaults=True,
        overwrite=True,
        unsafe=True,
        quiet=True,
        vcs_ref="HEAD",
    )


def package_of(project: Path) -> str:
    text = (project / ".copier-answers.yml").read_text(encoding="utf-8")
    match = re.search(r"^package_name: (\S+)$", text, re.MULTILINE)
    assert match
    return match[1]


def conflicted(project: Path) -> set[str]:
    return {
        name
        for name in listing(project)
        if MARKER.search((project / name).read_text(encoding="utf-8", errors="replace"))
    }


def template_changed(template: Path, old: str, tmp: Path, answers: dict[str, str]) -> set[str]:
    """Files whose rendering differs between ``old`` and HEAD for the same answers."""
    before = render(tmp / "before", answers, src=template, vcs_ref=old, skip_tasks=True)
    after = render(tmp / "after", answers, src=template, vcs_ref="HEAD", skip_tasks=True)
    names = listing(before) | listing(after)
    return {
        name
        for name in names
        if not (before / name).is_file()
        or not (after / name).is_file()
        or (before / name).read_bytes() != (after / name).read_bytes()
    }


@pytest.mark.slow
@pytest.mark.parametrize("release", releases_to_update(), ids=lambda r: r.tag)
def test_update_keeps_team_edits(
    template: Path, tmp_path: Path, env: dict[str, str], release: Release
) -> None:
    answers = {"project_name": "Team Project", "ci": "github"}
    project = render(tmp_path / "project", answers, src=template, vcs_ref=release.tag)
    commit(project, env, "generated")
    package = package_of(project)

    # The edits a team makes after generating.
    (project / "src" / package / "team_extras.py").write_text(TEAM_MODULE, encoding="utf-8")
    (project / "tests" / "test_team_extras.py").write_text(
        TEAM_TEST.format(package=package), encoding="utf-8"
    )
    readme = project / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\n## Team notes\n\nOurs.\n", "utf-8")
    (project / ".github" / "dependabot.yml").unlink()
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8").replace("line-length = 100", "line-length = 110"),
        encoding="utf-8",
    )
    run(["uv", "add", "--no-sync", "tomli-w==1.2.0"], project, env)
    commit(project, env, "team edits")

    update(project)

    files = listing(project)
    assert not [name for name in files if name.endswith((".rej", ".orig"))]
    assert (project / "src" / package / "team_extras.py").read_text("utf-8") == TEAM_MODULE
    recorded = (project / ".copier-answers.yml").read_text("utf-8")
    if release.version_tuple < TRACE_UI_SINCE:  # the migration keeps the stack as it was
        assert "trace_ui: none" in recorded
        assert "compose.traces.yaml" not in files
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in (project / "compose.yaml").read_text("utf-8")
    else:  # answered at copy time (the default): kept
        assert "trace_ui: jaeger" in recorded
        assert "compose.traces.yaml" in files
    if release.version_tuple < RUNNERS_SINCE:  # every runner and feature, as the release shipped
        assert_kept_what_the_release_shipped(project, package, recorded, release)
    assert "## Team notes" in readme.read_text(encoding="utf-8")
    changed = template_changed(template, release.tag, tmp_path, answers)
    if ".github/dependabot.yml" not in changed:
        assert ".github/dependabot.yml" not in files, "a deleted file came back"
    markers = conflicted(project)
    assert markers <= changed, f"conflict markers where the template did not change: {markers}"
    if markers:
        guard = subprocess.run(
            ["uv", "run", "pre-commit", "run", "check-merge-conflict", "--all-files"],
            cwd=project,
            env=env,
            capture_output=True,
            check=False,
        )
        assert guard.returncode != 0, "the pre-commit guard let conflict markers through"
        for name in markers:  # resolve as a team would: take the template's side, redo ours
            path = project / name
            path.write_text(take_template_side(path.read_text(encoding="utf-8")), "utf-8")
        if "pyproject.toml" in markers:
            pyproject.write_text(
                pyproject.read_text("utf-8").replace("line-length = 100", "line-length = 110"),
                encoding="utf-8",
            )
            run(["uv", "add", "--no-sync", "tomli-w==1.2.0"], project, env)
        assert not conflicted(project)
        run(["make", "format"], project, env)  # the team's style on the resolved files
    text = pyproject.read_text(encoding="utf-8")
    assert "tomli-w==1.2.0" in text
    assert "line-length = 110" in text
    assert "tomli-w" in (project / "uv.lock").read_text(encoding="utf-8")
    run(["make", "setup"], project, env)
    run(["make", "check"], project, env)


def assert_kept_what_the_release_shipped(
    project: Path, package: str, recorded: str, release: Release
) -> None:
    """Old answers became new ones; the old layout and the .env's old names are gone."""
    answers = yaml.safe_load(recorded)
    assert answers["runners"] == ["inprocess", "llamacpp", "ollama", "hosted"]
    assert "model_runner" not in answers
    for feature in ("with_evals", "with_tracing", "with_workshop", "with_devcontainer"):
        assert answers[feature] is True, feature
    files = listing(project)
    for runner in ("inprocess", "llamacpp", "ollama", "hosted"):
        assert f"src/{package}/llm/runners/{runner}.py" in files
    assert f"src/{package}/settings.py" not in files  # the old layout went with the update
    assert f"src/{package}/gateway.py" not in files
    env_file = (project / ".env").read_text(encoding="utf-8")
    assert "MODEL_RUNNER=inprocess" in env_file  # was `embedded`
    if release.version_tuple < AI_CORE_SINCE:
        return  # the .env is new with this update
    assert "\n# CHAT_MODEL_PATH=models/gemma-3-270m-q4_k_m.gguf\n" in env_file  # the old default
    assert "\n# VECTOR_STORE=sqlite\n" in env_file  # the store is an answer now


CONFLICT = re.compile(
    r"^<<<<<<< [^\n]*\n(?P<ours>.*?)^=======\n(?P<theirs>.*?)^>>>>>>> [^\n]*\n",
    re.MULTILINE | re.DOTALL,
)


def take_template_side(text: str) -> str:
    """Resolve Copier's inline conflict blocks by keeping the updated template's side."""
    return CONFLICT.sub(lambda match: match["theirs"], text)


def test_take_template_side_resolves_blocks() -> None:
    text = "a\n<<<<<<< before updating\nours\n=======\ntheirs\n>>>>>>> after updating\nz\n"
    assert take_template_side(text) == "a\ntheirs\nz\n"


@pytest.mark.slow
def test_flipping_ci_on_update_swaps_the_ci_files(
    template: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    project = render(tmp_path / "project", {"ci": "github"}, src=template, vcs_ref="HEAD")
    commit(project, env, "generated")
    update(project, {"ci": "gitlab"})
    files = listing(project)
    assert ".gitlab-ci.yml" in files
    assert not any(name.startswith(".github/") for name in files)
    assert "zizmor" not in (project / "pyproject.toml").read_text(encoding="utf-8")
    run(["uv", "lock", "--check"], project, env)  # relocked after the update


def test_a_project_from_the_last_release_opts_in_to_a_trace_ui(
    template: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """An answer given on update wins over the recorded one (or the migration's `none`)."""
    latest = releases()[-1]
    project = render(tmp_path / "project", {}, src=template, vcs_ref=latest.tag)
    commit(project, env, "generated")
    update(project, {"trace_ui": "phoenix"})
    assert "trace_ui: phoenix" in (project / ".copier-answers.yml").read_text("utf-8")
    assert "arizephoenix/phoenix:" in (project / "compose.traces.yaml").read_text("utf-8")
    assert "http://phoenix:6006" in (project / "compose.yaml").read_text("utf-8")


@pytest.mark.slow
def test_turning_the_api_off_on_update_removes_its_files_and_dependencies(
    template: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    project = render(tmp_path / "project", {"with_api": True}, src=template, vcs_ref="HEAD")
    commit(project, env, "generated")
    env_file = (project / ".env").read_text(encoding="utf-8")
    package = package_of(project)
    api_files = {
        f"src/{package}/api/app.py",
        f"src/{package}/api/static/index.html",
        f"src/{package}/cli/serve.py",
        "tests/test_api.py",
        "tests/test_chat_page.py",
        "tests/test_openai_clients.py",
        "make/api.mk",
    }
    assert api_files <= listing(project)
    update(project, {"with_api": False, "vector_store": "pgvector"})
    assert not api_files & listing(project)
    pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "fastapi" not in pyproject
    assert '"openai' not in pyproject
    lock = tomllib.loads((project / "uv.lock").read_text(encoding="utf-8"))
    own = next(p for p in lock["package"] if p.get("source", {}).get("editable") == ".")
    assert "fastapi" not in {dependency["name"] for dependency in own["dependencies"]}
    run(["uv", "lock", "--check"], project, env)
    # .env holds this machine's settings and secrets: an update never rewrites it.
    assert (project / ".env").read_text(encoding="utf-8") == env_file
    answers = (project / ".copier-answers.yml").read_text(encoding="utf-8")
    assert "vector_store: pgvector" in answers
    assert "with_api: false" in answers


@pytest.mark.slow
def test_check_update_tells_an_old_project_about_the_latest_release(
    template: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    oldest, latest = releases()[0], releases()[-1]
    project = render(tmp_path / "project", {}, src=template, vcs_ref=oldest.tag, skip_tasks=True)
    result = run(["copier", "check-update", "--output-format", "json"], project, env, timeout=300)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["update_available"] is (oldest != latest)
    assert report["current_version"] == oldest.version
    assert report["latest_version"] == latest.version
