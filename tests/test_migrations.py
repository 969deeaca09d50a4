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


def test_default_answer_reads_the_value_as_yaml(tmp_path: Path) -> None:
    answers = tmp_path / ".copier-answers.yml"
    answers.write_text(f"{HEADER}model_runner: embedded\n", encoding="utf-8")
    assert migrations.main(["default-answer", str(answers), "runners", "[inprocess, hosted]"]) == 0
    assert migrations.main(["default-answer", str(answers), "with_evals", "true"]) == 0
    recorded = yaml.safe_load(answers.read_text(encoding="utf-8"))
    assert recorded["runners"] == ["inprocess", "hosted"]
    assert recorded["with_evals"] is True


def test_rename_env_keeps_values_comments_and_newer_names(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# our settings\nGGUF_MODEL_PATH=/models/chat.gguf\n# DOCS_PATH=docs\n"
        "SQLITE_PATH=old.db\nRAG_INDEX_PATH=new.db\nMODEL_RUNNER=embedded\nKEEP=1\n",
        encoding="utf-8",
    )
    done = migrations.rename_env(
        env_file,
        {"GGUF_MODEL_PATH": "CHAT_MODEL_PATH", "DOCS_PATH": "RAG_DOCS_PATH",
         "SQLITE_PATH": "RAG_INDEX_PATH"},
    )  # fmt: skip
    assert env_file.read_text(encoding="utf-8") == (
        "# our settings\nCHAT_MODEL_PATH=/models/chat.gguf\n# RAG_DOCS_PATH=docs\n"
        "SQLITE_PATH=old.db\nRAG_INDEX_PATH=new.db\nMODEL_RUNNER=inprocess\nKEEP=1\n"
    )
    assert "SQLITE_PATH -> RAG_INDEX_PATH" not in done  # the new name was already set
    assert migrations.rename_env(tmp_path / "missing.env", {"A": "B"}) == []


def test_rename_env_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TRACES_PATH=traces.jsonl\n", encoding="utf-8")
    assert migrations.main(["rename-env", str(env_file), "TRACES_PATH=TRACE_PATH"]) == 0
    assert env_file.read_text(encoding="utf-8") == "TRACE_PATH=traces.jsonl\n"
    assert "TRACES_PATH -> TRACE_PATH" in capsys.readouterr().err


def test_retire_env_comments_out_what_is_no_longer_read_or_an_old_default(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "VECTOR_STORE=sqlite\nGGUF_MODEL_PATH=models/gemma-3-270m-q4_k_m.gguf\nKEEP=1",
        encoding="utf-8",
    )
    retired = ["VECTOR_STORE", "GGUF_MODEL_PATH=models/gemma-3-270m-q4_k_m.gguf"]
    assert migrations.main(["retire-env", str(env_file), *retired]) == 0
    text = env_file.read_text(encoding="utf-8")
    assert "\n# VECTOR_STORE=sqlite\n" in f"\n{text}"
    assert "# GGUF_MODEL_PATH=models/gemma-3-270m-q4_k_m.gguf\n" in text
    assert "held the old default" in text
    assert text.endswith("KEEP=1")
    chosen = tmp_path / "chosen.env"
    chosen.write_text("GGUF_MODEL_PATH=/models/ours.gguf\n", encoding="utf-8")
    assert migrations.retire_env(chosen, retired) == []  # the team's own choice stays
    assert chosen.read_text(encoding="utf-8") == "GGUF_MODEL_PATH=/models/ours.gguf\n"
