"""The naming rules behind the questions' defaults and validators."""

from __future__ import annotations

import pytest

import naming


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("My RAG App", "my-rag-app"),
        ("  Support Bot v2 ", "support-bot-v2"),
        ("ACME/ops..tools", "acme-ops-tools"),
        ("42 Answers", "answers"),
        ("!!!", "project"),
    ],
)
def test_slugify_makes_kebab_case(name: str, slug: str) -> None:
    assert naming.slugify(name) == slug
    assert naming.slug_error(slug) == ""


def test_package_from_slug_is_importable() -> None:
    assert naming.package_from_slug("my-rag-app") == "my_rag_app"
    assert naming.package_name_error("my_rag_app") == ""


@pytest.mark.parametrize(
    ("slug", "hint"),
    [
        ("my app", "Try: my-app"),
        ("My-App", "Try: my-app"),
        ("my..app", "Try: my-app"),
        ("my/app", "Try: my-app"),
        ("-app", "Try: app"),
        ("app-", "Try: app"),
        ("", "Try: project"),
    ],
)
def test_bad_slugs_are_refused_with_a_suggestion(slug: str, hint: str) -> None:
    error = naming.slug_error(slug)
    assert "not a valid slug" in error
    assert hint in error


@pytest.mark.parametrize(
    ("package", "reason"),
    [
        ("class", "keyword"),
        ("match", "keyword"),
        ("json", "shadow"),
        ("typing", "shadow"),
        ("tests", "shadow"),
        ("1app", "starts with a digit"),
        ("my-app", "not a Python identifier"),
        ("my app", "not a Python identifier"),
        ("MyApp", "capitals"),
        ("", "not a Python identifier"),
    ],
)
def test_bad_package_names_are_refused(package: str, reason: str) -> None:
    error = naming.package_name_error(package)
    assert reason in error
    assert "Try" in error or "e.g." in error


@pytest.mark.parametrize("name", ["", "   ", "123"])
def test_bad_project_names_are_refused(name: str) -> None:
    assert "Type a name such as" in naming.project_name_error(name)


@pytest.mark.parametrize("email", ["jane@example.com", "a.b+c@sub.example.org"])
def test_good_emails_pass(email: str) -> None:
    assert naming.email_error(email) == ""


@pytest.mark.parametrize("email", ["", "jane", "jane@", "@example.com", "jane@example", "a b@c.d"])
def test_bad_emails_are_refused(email: str) -> None:
    assert "jane@example.com" in naming.email_error(email)
