"""Migrations Copier runs in a project during ``copier update`` (``_migrations`` in copier.yml).

Run as ``python hooks/migrations.py MIGRATION ARGS...`` from the project directory.

``default-answer ANSWERS_FILE KEY VALUE`` records ``KEY: VALUE`` (VALUE read as YAML: ``true``,
``[a, b]``) in the answers file when the project's answers predate question KEY. Copier runs it
before the update renders (``_stage == 'before'``) and then reads the answers again, so an
update keeps the project as it was where a new question's default would otherwise change it;
the team opts in or out by answering (``copier update -d KEY=...``).

``rename-env ENV_FILE OLD=NEW ...`` renames settings in the team's ``.env`` (which updates never
overwrite) to the names the new version reads, keeping values and comments; a name the file
already has under its new name is left alone. ``MODEL_RUNNER=embedded`` becomes ``inprocess``.

``retire-env ENV_FILE NAME[=VALUE] ...`` comments out settings the new version no longer reads,
or (with ``=VALUE``) a setting that holds an old default, so the new default applies; a value
the team chose is kept.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from collections.abc import Sequence


def default_answer(answers_file: Path, key: str, value: object) -> bool:
    """Add ``key: value`` to the answers file unless ``key`` is there; True when it was added.

    The file is appended to, not rewritten: Copier's header comment and the other answers stay
    byte for byte.
    """
    text = answers_file.read_text(encoding="utf-8")
    answers = yaml.safe_load(text) or {}
    if not isinstance(answers, dict):
        msg = f"{answers_file} is not a mapping of answers"
        raise TypeError(msg)
    if key in answers:
        return False
    line = yaml.safe_dump({key: value}, default_flow_style=False, allow_unicode=True)
    separator = "" if not text or text.endswith("\n") else "\n"
    answers_file.write_text(f"{text}{separator}{line}", encoding="utf-8")
    return True


def rename_env(env_file: Path, renames: dict[str, str]) -> list[str]:
    """Rename the settings of `renames` in `env_file`; returns what was renamed."""
    if not env_file.is_file():
        return []
    lines = env_file.read_text(encoding="utf-8").splitlines(keepends=True)
    present = {m[1] for line in lines if (m := re.match(r"\s*#?\s*([A-Z][A-Z0-9_]*)=", line))}
    done: list[str] = []
    for index, line in enumerate(lines):
        match = re.match(r"(\s*#?\s*)([A-Z][A-Z0-9_]*)=(.*)", line, re.DOTALL)
        if match is None:
            continue
        lead, name, rest = match.groups()
        if name in renames and renames[name] not in present:
            lines[index] = f"{lead}{renames[name]}={rest}"
            done.append(f"{name} -> {renames[name]}")
        elif name == "MODEL_RUNNER" and rest.strip() == "embedded":
            lines[index] = f"{lead}{name}=inprocess\n"
            done.append("MODEL_RUNNER=embedded -> inprocess")
    if done:
        env_file.write_text("".join(lines), encoding="utf-8")
    return done


def retire_env(env_file: Path, retired: Sequence[str]) -> list[str]:
    """Comment out the settings of `retired` (``NAME`` or ``NAME=VALUE``); returns what was."""
    if not env_file.is_file():
        return []
    rules: dict[str, str | None] = {}
    for item in retired:
        name, _, value = item.partition("=")
        rules[name] = value if "=" in item else None
    kept: list[str] = []
    done: list[str] = []
    for line in env_file.read_text(encoding="utf-8").splitlines(keepends=True):
        match = re.match(r"\s*([A-Z][A-Z0-9_]*)=(.*)", line)
        old = rules.get(match[1], "") if match else ""
        if match is None or match[1] not in rules or old not in (None, match[2].strip()):
            kept.append(line)
            continue
        why = "is no longer read" if old is None else "held the old default; the new one applies"
        kept.append(f"# {match[1]} {why} (retired by a template update):\n")
        kept.append(f"# {line.lstrip().rstrip(chr(10))}\n")
        done.append(f"{match[1]} retired")
    if done:
        env_file.write_text("".join(kept), encoding="utf-8")
    return done


USAGE = (
    "usage: migrations.py default-answer ANSWERS_FILE KEY VALUE\n"
    "       migrations.py rename-env ENV_FILE OLD=NEW ...\n"
    "       migrations.py retire-env ENV_FILE NAME[=VALUE] ...\n"
)


def main(argv: Sequence[str]) -> int:
    """Dispatch a migration; a broken file is explained, not a traceback."""
    try:
        if len(argv) == 4 and argv[0] == "default-answer":  # noqa: PLR2004 - name and 3 arguments
            value = yaml.safe_load(argv[3])
            if default_answer(Path(argv[1]), argv[2], value):
                sys.stderr.write(
                    f"copier-llmops: {argv[2]} is new in this version; this project keeps "
                    f"{argv[3]} (choose another with: copier update -d {argv[2]}=...)\n"
                )
            return 0
        if len(argv) >= 2 and argv[0] == "rename-env":  # noqa: PLR2004 - name and a file
            pairs = dict(pair.split("=", 1) for pair in argv[2:])
            for change in rename_env(Path(argv[1]), pairs):
                sys.stderr.write(f"copier-llmops: .env: {change}\n")
            return 0
        if len(argv) >= 2 and argv[0] == "retire-env":  # noqa: PLR2004 - name and a file
            for change in retire_env(Path(argv[1]), argv[2:]):
                sys.stderr.write(f"copier-llmops: .env: {change}\n")
            return 0
    except (OSError, TypeError, ValueError, yaml.YAMLError) as exc:
        sys.stderr.write(f"copier-llmops: cannot migrate: {exc}\n")
        return 1
    sys.stderr.write(USAGE)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
