"""The post-copy tasks: they do their job, and never lose the rendered files when they can't."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import tasks
from helpers import ROOT

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_init_git_makes_a_repository_on_main(tmp_path: Path) -> None:
    assert tasks.init_git(tmp_path) == 0
    head = subprocess.run(
        ["git", "symbolic-ref", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert head.stdout.strip() == "refs/heads/main"


def test_init_git_leaves_an_existing_repository_alone(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "trunk"], cwd=tmp_path, check=True)
    nested = tmp_path / "nested"
    nested.mkdir()
    assert tasks.init_git(nested) == 0
    assert not (nested / ".git").exists()


def test_lock_without_uv_warns_and_keeps_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tasks, "find_uv", lambda: None)
    assert tasks.lock(tmp_path) == 0
    assert "uv not found" in capsys.readouterr().err


def test_lock_failure_is_reported_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text("this is not toml = [", encoding="utf-8")
    assert tasks.lock(tmp_path) == 0
    assert "`uv lock` failed" in capsys.readouterr().err


def test_unknown_task_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert tasks.main(["deploy"]) == 2
    assert "usage" in capsys.readouterr().err


def test_lock_is_skipped_in_copiers_update_replays(tmp_path: Path) -> None:
    replay = tmp_path / "copier._main.old_copy.abc123" / "project"
    replay.mkdir(parents=True)
    (replay / "pyproject.toml").write_text("this is not toml = [", encoding="utf-8")
    assert tasks.is_update_replay(replay)
    assert not tasks.is_update_replay(tmp_path)
    assert tasks.lock(replay) == 0
    assert not (replay / "uv.lock").exists()


def test_format_pins_the_projects_ruff() -> None:
    pyproject = (ROOT / "template" / "pyproject.toml.jinja").read_text(encoding="utf-8")
    assert f'"{tasks.RUFF}"' in pyproject


def test_format_rewraps_code_for_a_long_package_name(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 40\n", "utf-8")
    source = tmp_path / "mod.py"
    source.write_text("from long_package_name.module import first, second, third\n", "utf-8")
    assert tasks.format_code(tmp_path) == 0
    assert all(len(line) <= 40 for line in source.read_text("utf-8").splitlines())


def test_protect_secrets_makes_env_private(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("HOSTED_API_KEY=sk-test\n", encoding="utf-8")
    env_file.chmod(0o644)
    assert tasks.protect_secrets(tmp_path) == 0
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert tasks.protect_secrets(tmp_path / "elsewhere") == 0  # no .env: nothing to do
