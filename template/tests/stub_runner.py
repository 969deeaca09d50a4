"""The runner `stub`: the fast tests' stand-in server (stub_llm.py), checked like a real one."""

from __future__ import annotations

import urllib.error
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

HEALTH_TYPE: Any = None  # set by conftest: the app's runners.Health


def prepare() -> None:
    """Nothing to set up: LiteLLM's OpenAI provider reaches the server."""


def health(deployments: Sequence[Any]) -> Any:
    base = str(deployments[0].litellm_params["api_base"]).removesuffix("/v1")
    from urllib.request import urlopen  # noqa: PLC0415

    try:
        with urlopen(f"{base}/health", timeout=2):  # noqa: S310 - loopback test server
            return HEALTH_TYPE(ok=True, detail=f"stub up at {base}")
    except (OSError, urllib.error.URLError) as exc:
        return HEALTH_TYPE(ok=False, detail=f"cannot reach {base} ({exc})")


def hint() -> str:
    return "start the stub server"


def stub_names_gguf_files(monkeypatch: Any, gguf: Any) -> None:
    """For one test: the stub's deployments name GGUF files (`model_info.model_path`), listed as
    the app's GGUF runners list them (`gguf`: its `llm.runners._gguf`)."""
    import sys  # noqa: PLC0415

    monkeypatch.setattr(sys.modules[__name__], "Info", gguf.GgufInfo, raising=False)
    monkeypatch.setattr(sys.modules[__name__], "files", gguf.files, raising=False)
