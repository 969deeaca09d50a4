"""The template's documentation is current and builds strictly."""

from __future__ import annotations

import subprocess
import sys

import yaml

import questions_doc
from helpers import ROOT


def test_questions_page_matches_copier_yml() -> None:
    config = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
    committed = (ROOT / "docs" / "questions.md").read_text(encoding="utf-8")
    assert committed == questions_doc.render(config), "run: python hooks/questions_doc.py"
    for name, spec in config.items():
        if not name.startswith("_") and spec.get("when") is not False:
            assert f"`{name}`" in committed


def test_docs_site_builds_strictly(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
