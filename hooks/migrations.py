"""Migrations Copier runs in a project during ``copier update`` (``_migrations`` in copier.yml).

Run as ``python hooks/migrations.py MIGRATION ARGS...`` from the project directory.

``default-answer ANSWERS_FILE KEY VALUE`` records ``KEY: VALUE`` in the answers file when the
project's answers predate question KEY. Copier runs it before the update renders (``_stage ==
'before'``) and then reads the answers again, so an update keeps the project as it was where a
new question's default would otherwise change it (a new service to pull, for instance); the
team opts in by answering (``copier update -d KEY=...``, or interactively, where the recorded
value is offered as the default).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from collections.abc import Sequence


def default_answer(answers_file: Path, key: str, value: str) -> bool:
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


def main(argv: Sequence[str]) -> int:
    """Dispatch a migration; a missing answers file is explained, not a traceback."""
    if len(argv) != 4 or argv[0] != "default-answer":  # noqa: PLR2004 - name and 3 arguments
        sys.stderr.write("usage: migrations.py default-answer ANSWERS_FILE KEY VALUE\n")
        return 2
    answers_file, key, value = Path(argv[1]), argv[2], argv[3]
    try:
        added = default_answer(answers_file, key, value)
    except (OSError, TypeError, yaml.YAMLError) as exc:
        sys.stderr.write(f"copier-llmops: cannot migrate {answers_file}: {exc}\n")
        return 1
    if added:
        sys.stderr.write(
            f"copier-llmops: {key} is new in this version; this project keeps '{value}' "
            f"(choose another with: copier update -d {key}=...)\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
