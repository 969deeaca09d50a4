"""Model runners: where the models run, and what the gateway needs to know about each.

A runner is one way of serving models (in-process, a llama.cpp server, Ollama, a hosted
provider). Each module here describes one: which settings it needs, how to tell whether its
model wants chat messages or a plain completion prompt, how to check it is up, and what to tell
the user when it is not. The LiteLLM deployments that reach it are in `llm.yaml`. Adding a runner
is adding a module, a line in `RUNNERS`, a value in `settings.Runner` and its deployments.

Modules in this package import their parent package's modules relatively (`from ..settings`),
because the package is renamed when the project is generated; that is why those few lines
carry `noqa: TID252`.
"""

from __future__ import annotations

from .base import Health, PromptStyle, Runner, Status
from .embedded import EmbeddedRunner
from .hosted import HostedRunner
from .llamacpp import LlamaCppRunner
from .ollama import OllamaRunner

RUNNERS: dict[str, Runner] = {
    runner.name: runner
    for runner in (EmbeddedRunner(), LlamaCppRunner(), OllamaRunner(), HostedRunner())
}


def get_runner(name: str) -> Runner:
    """The runner chosen by MODEL_RUNNER."""
    try:
        return RUNNERS[name]
    except KeyError:
        known = ", ".join(sorted(RUNNERS))
        raise ValueError(f"unknown MODEL_RUNNER={name!r}; known runners: {known}") from None


__all__ = ["RUNNERS", "Health", "PromptStyle", "Runner", "Status", "get_runner"]
