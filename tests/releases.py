"""Released template versions, read from RELEASES.md, and a scratch clone that carries them.

Tags may not travel with every copy of the repository, so the update tests recreate them in a
scratch clone from the table in RELEASES.md. Uncommitted work is committed in that clone, so
the tests always update *to* what is in the working tree.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from helpers import ROOT

if TYPE_CHECKING:
    from pathlib import Path

ROW = re.compile(r"^\|\s*(?P<version>\d+(?:\.\d+)+)\s*\|\s*(?P<commit>[0-9a-f]{7,40})\s*\|")


@dataclass(frozen=True)
class Release:
    """One released version of the template and the commit it was cut from."""

    version: str
    commit: str

    @property
    def tag(self) -> str:
        """The git tag Copier reads the version from."""
        return f"v{self.version}"

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """The version as numbers, for comparisons (``(0, 3, 0) < (0, 4, 0)``)."""
        return tuple(int(part) for part in self.version.split("."))


def releases() -> list[Release]:
    """Every release recorded in RELEASES.md, oldest first."""
    text = (ROOT / "RELEASES.md").read_text(encoding="utf-8")
    found = [ROW.match(line) for line in text.splitlines()]
    return [Release(m["version"], m["commit"]) for m in found if m]


def _git(args: list[str], cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return result.stdout


def scratch_template(destination: Path) -> Path:
    """Clone this repository into ``destination`` with the working tree committed and tags made."""
    _git(["clone", "--quiet", "--no-local", str(ROOT), str(destination)], ROOT)
    tracked_or_new = _git(["ls-files", "--cached", "--others", "--exclude-standard"], ROOT)
    for name in tracked_or_new.splitlines():
        source = ROOT / name
        target = destination / name
        if source.is_symlink() or not source.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    # Deleted in the working tree, staged or not: gone from the clone too.
    for name in _git(["ls-tree", "-r", "--name-only", "HEAD"], ROOT).splitlines():
        if not (ROOT / name).exists() and not (ROOT / name).is_symlink():
            (destination / name).unlink(missing_ok=True)
    _git(["add", "--all"], destination)
    if _git(["status", "--porcelain"], destination).strip():
        _git(
            [
                "-c",
                "user.name=tests",
                "-c",
                "user.email=tests@example.com",
                "commit",
                "--quiet",
                "--no-verify",
                "-m",
                "work in progress",
            ],
            destination,
        )
    for release in releases():
        _git(["tag", "--force", release.tag, release.commit], destination)
    return destination
