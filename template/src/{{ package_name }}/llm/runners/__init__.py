"""Runners: where models run. One module per runner, found by name (`MODEL_RUNNER`).

A runner module is a complete plug-in: how to tell that its server is up and has the models
(`health`), what to tell someone whose runner is down (`hint`), any one-time setup before
LiteLLM's first call (`prepare`), and, when it has them, the fields of its llm.yaml entries
(`Info` for `model_info`, `Params` for `litellm_params`), how its models are pulled (`pull`) and
listed (`files`), and the calls themselves when it runs models in this process (`stream`,
`embed`: no LiteLLM in between). Adding a runner is adding a module and its llm.yaml entries
(docs/runners.md).
"""

from __future__ import annotations

import importlib
import pkgutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from ...errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..config import Deployment

PROBE_SECONDS = 5.0


@dataclass(frozen=True)
class Health:
    """Whether a runner can answer now, and what to do when it cannot."""

    ok: bool
    detail: str


class Runner(Protocol):
    """What every runner module provides."""

    def prepare(self) -> None:
        """One-time setup before LiteLLM's first call."""
        ...

    def health(self, deployments: Sequence[Deployment]) -> Health:
        """Up and holding every model the deployments name; never raises."""
        ...

    def hint(self) -> str:
        """How to start the runner, or what to use instead."""
        ...


def available() -> list[str]:
    """The runners this project has."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str) -> Runner:
    """The runner module called `name`."""
    try:
        return cast("Runner", importlib.import_module(f"{__name__}.{name}"))
    except ModuleNotFoundError:
        raise ConfigError(
            f"MODEL_RUNNER={name} is not a runner of this project: use {', '.join(available())}"
        ) from None


def get_json(url: str, timeout: float = PROBE_SECONDS) -> object:
    """GET a JSON document from a runner's own API (for health checks)."""
    import json  # noqa: PLC0415 - only health checks need it

    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our runner's URL
        return json.loads(response.read() or b"null")


def unreachable(url: str, exc: Exception) -> str:
    """Why a runner's URL did not answer, in a few words."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"{url} answered HTTP {exc.code}"
    reason = getattr(exc, "reason", None) or exc
    return f"cannot reach {url} ({reason})"
