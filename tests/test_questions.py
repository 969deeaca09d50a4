"""Every invalid answer is refused by Copier itself, with a message that says what to type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from helpers import render

if TYPE_CHECKING:
    from pathlib import Path

INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"project_name": ""}, "project_name", "cannot be empty"),
    ({"project_slug": "my app"}, "project_slug", "Try: my-app"),
    ({"project_slug": "My-App"}, "project_slug", "Try: my-app"),
    ({"project_slug": "../escape"}, "project_slug", "Try: escape"),
    ({"project_slug": "a/b"}, "project_slug", "Try: a-b"),
    ({"package_name": "class"}, "package_name", "keyword"),
    ({"package_name": "1app"}, "package_name", "starts with a digit"),
    ({"package_name": "json"}, "package_name", "shadow"),
    ({"author_email": "not-an-email"}, "author_email", "jane@example.com"),
    ({"author_name": "  "}, "author_name", "cannot be empty"),
    ({"python_version": "3.9"}, "python_version", "3.9"),
    ({"license": "GPL"}, "license", "GPL"),
    ({"ci": "jenkins"}, "ci", "jenkins"),
    ({"runners": ["tgi"]}, "runners", "tgi"),
    ({"runners": []}, "runners", "at least one runner"),
    ({"runners": ["hosted"], "hosted_model": "gpt-4o"}, "hosted_model", "provider/model"),
    ({"vector_store": "chroma"}, "vector_store", "chroma"),
]


@pytest.mark.parametrize(
    ("answers", "question", "message"), INVALID, ids=[f"{q}={a[q]!r}" for a, q, _ in INVALID]
)
def test_invalid_answer_is_refused(
    tmp_path: Path, answers: dict[str, str], question: str, message: str
) -> None:
    destination = tmp_path / "project"
    with pytest.raises(ValueError, match=question) as refused:
        render(destination, answers, skip_tasks=True)
    assert message in str(refused.value)
    assert not (destination / "pyproject.toml").exists()


def test_defaults_are_derived_from_the_name(tmp_path: Path) -> None:
    project = render(tmp_path / "p", {"project_name": "Support Bot 2"}, skip_tasks=True)
    answers = (project / ".copier-answers.yml").read_text(encoding="utf-8")
    assert "project_slug: support-bot-2" in answers
    assert "package_name: support_bot_2" in answers
    assert (project / "src" / "support_bot_2" / "py.typed").is_file()


def test_secret_answer_goes_to_env_only(tmp_path: Path) -> None:
    key = "sk-question-0000"  # pragma: allowlist secret
    answers = {"runners": ["hosted"], "hosted_api_key": key}
    project = render(tmp_path / "p", answers, skip_tasks=True)
    assert f"HOSTED_API_KEY={key}" in (project / ".env").read_text(encoding="utf-8")
    assert key not in (project / ".copier-answers.yml").read_text(encoding="utf-8")
    assert "hosted_api_key" not in (project / ".copier-answers.yml").read_text(encoding="utf-8")
