"""Write ``docs/questions.md`` from ``copier.yml`` so the page cannot drift from the questions.

Run ``python hooks/questions_doc.py`` after editing ``copier.yml``; a test fails when the page
is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
HEADER = """# Questions

Generated from `copier.yml` by `hooks/questions_doc.py`; do not edit by hand.

Pass answers with `--data name=value` or `--data-file answers.yml`. Names are a public
interface: answers files and scripts rely on them.

| Question | Help | Choices | Default |
| --- | --- | --- | --- |
"""


def _cell(value: object) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ").strip()
    return f"`{text}`" if text else ""


def _choices(spec: dict[str, Any]) -> str:
    choices = spec.get("choices")
    if not choices:
        return ""
    values = choices.values() if isinstance(choices, dict) else choices
    return ", ".join(_cell(value) for value in values)


def render(config: dict[str, Any]) -> str:
    """The Markdown page for every asked question (computed values are skipped)."""
    rows = [
        f"| `{name}` | {spec.get('help', '')} | {_choices(spec)} "
        f"| {_cell(spec.get('default', ''))} |"
        for name, spec in config.items()
        if not name.startswith("_") and isinstance(spec, dict) and spec.get("when") is not False
    ]
    return HEADER + "\n".join(rows) + "\n"


def main() -> int:
    """Rewrite the page in place."""
    config = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
    (ROOT / "docs" / "questions.md").write_text(render(config), encoding="utf-8")
    sys.stdout.write("docs/questions.md written\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
