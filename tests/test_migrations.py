"""The update migrations in hooks/migrations.py: they change only what they must."""

from __future__ import annotations

from typing import TYPE_CHECKING

import migrations
import yaml

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

HEADER = "# Changes here will be overwritten by Copier; NEVER EDIT MANUALLY\n"


def test_default_answer_records_a_question_the_project_predates(tmp_path: Path) -> None:
    answers = tmp_path / ".copier-answers.yml"
    answers.write_text(f"{HEADER}_commit: v0.3.0\nwith_api: true\n", encoding="utf-8")
    assert migrations.default_answer(answers, "trace_ui", "none") is True
    text = answers.read_text(encoding="utf-8")
    assert text.startswith(f"{HEADER}_commit: v0.3.0\nwith_api: true\n")  # the rest untouched
    assert yaml.safe_load(text) == {"_commit": "v0.3.0", "with_api": True, "trace_ui": "none"}


def test_default_answer_keeps_an_existing_answer(tmp_path: Path) -> None:
    answers = tmp_path / ".copier-answers.yml"
    original = f"{HEADER}trace_ui: phoenix\n"
    answers.write_text(original, encoding="utf-8")
    assert migrations.default_answer(answers, "trace_ui", "none") is False
    assert answers.read_text(encoding="utf-8") == original


def test_default_answer_after_a_last_line_without_newline(tmp_path: Path) -> None:
    answers = tmp_path / ".copier-answers.yml"
    answers.write_text("ci: github", encoding="utf-8")
    migrations.default_answer(answers, "trace_ui", "none")
    assert yaml.safe_load(answers.read_text(encoding="utf-8")) == {
        "ci": "github",
        "trace_ui": "none",
    }


def test_a_broken_answers_file_is_reported_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = tmp_path / ".copier-answers.yml"
    answers.write_text("- not\n- a mapping\n", encoding="utf-8")
    code = migrations.main(["default-answer", str(answers), "trace_ui", "none"])
    assert code == 1
    assert "is not a mapping of answers" in capsys.readouterr().err
    assert answers.read_text(encoding="utf-8") == "- not\n- a mapping\n"
    missing = migrations.main(["default-answer", str(tmp_path / "nope.yml"), "k", "v"])
    assert missing == 1


def test_usage_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    assert migrations.main(["rename", "a"]) == 2
    assert "usage: migrations.py default-answer" in capsys.readouterr().err
