"""Render the default project (post-copy tasks included) into DEST, unless it is there already.

python tests/containers/render_default.py build/containers-bench
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import render


def main(destination: str) -> None:
    dest = Path(destination).resolve()
    if not (dest / "uv.lock").is_file():
        # A lock the image build can use: PyPI sources, not this checkout's wheelhouse.
        render(dest, {}, portable_lock=True)
    sys.stdout.write(f"{dest}\n")


if __name__ == "__main__":
    main(sys.argv[1])
