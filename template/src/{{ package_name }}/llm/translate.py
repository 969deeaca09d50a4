"""LiteLLM, imported on first use and told how to behave, and its errors in the app's words.

Importing LiteLLM takes seconds: only a call through it (a server, a hosted provider) imports
it. Its exceptions become `ModelError`s that say what to do, with secrets scrubbed and raised
`from None` (no key in a traceback).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from ..errors import ModelError, ModelUnavailableError
from .config import address

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger(__name__)
_DETAIL_CHARS = 300


@cache
def import_litellm() -> None:
    """LiteLLM, imported once and told how to behave first.

    LiteLLM reads two variables when imported: without them it fetches a model price list from
    GitHub, and loads the `.env` it finds into the process environment (config.py reads `.env`
    itself, in a documented order with the secrets directory). A value set by the user wins.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_MODE", "PRODUCTION")
    import litellm  # noqa: PLC0415 - seconds to import: only where a call needs it

    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners
    # The app traces its own model calls (tracing.span). LiteLLM's logging of each streamed
    # token (an event loop per token, in a thread) would only take CPU from the model.
    litellm.disable_streaming_logging = True
    # LiteLLM logs to stdout through handlers of its own, which would corrupt `--json` output:
    # its records go to the app's logging (stderr) instead.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


@dataclass(frozen=True)
class Explainer:
    """What an explanation names: the runner and model, its hint, the secrets to hide."""

    where: str
    hint: str
    secrets: Sequence[str]
    replicas: int
    cooldown_seconds: float

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _: object
    ) -> None:
        if isinstance(exc, Exception) and sys.modules.get("litellm") and isinstance(exc, _litellm_errors()):
            raise self.explain(exc) from None

    def explain(self, exc: Exception) -> ModelError:
        """LiteLLM's error as a message that says what to do, with secrets scrubbed."""
        from litellm import exceptions as errors  # noqa: PLC0415 - loaded by now

        lines = str(getattr(exc, "message", None) or exc).strip().splitlines()
        detail = lines[0] if lines else type(exc).__name__
        for secret in self.secrets:
            detail = detail.replace(secret, "***")
        detail = detail[:_DETAIL_CHARS]
        where = self.where
        if isinstance(exc, _cooldown_errors()):
            return ModelUnavailableError(
                f"{where} is unavailable: each of its {self.replicas} deployments failed and is "
                f"set aside for up to {self.cooldown_seconds:.0f} s; {self.hint} ({detail})"
            )
        if isinstance(exc, errors.ContextWindowExceededError):
            return ModelError(
                f"the prompt does not fit {where}'s context window: lower RAG_CONTEXT_TOKENS "
                f"or LLM_MAX_ANSWER_TOKENS ({detail})"
            )
        if isinstance(exc, errors.AuthenticationError | errors.PermissionDeniedError):
            return ModelError(f"{where} rejected the API key: check it in .env ({detail})")
        if isinstance(exc, errors.NotFoundError):
            return ModelError(
                f"{where} does not have the model: {self.hint}; or fix llm.yaml ({detail})"
            )
        if isinstance(exc, _unavailable_errors()):
            return ModelUnavailableError(f"{where} is unavailable: {self.hint} ({detail})")
        return ModelError(f"{where} failed: {detail}")


@cache
def _litellm_errors() -> tuple[type[Exception], ...]:
    import openai  # noqa: PLC0415 - LiteLLM's errors derive from the OpenAI SDK's

    return (openai.OpenAIError, *_cooldown_errors())


@cache
def _cooldown_errors() -> tuple[type[Exception], ...]:
    """What the Router raises when every replica of an alias is cooling down after failures."""
    import_litellm()
    from litellm.types.router import RouterRateLimitError  # noqa: PLC0415

    return (RouterRateLimitError,)


@cache
def _unavailable_errors() -> tuple[type[Exception], ...]:
    import_litellm()
    from litellm import exceptions as errors  # noqa: PLC0415

    return (
        errors.APIConnectionError,
        errors.Timeout,
        errors.ServiceUnavailableError,
        errors.InternalServerError,
        errors.BadGatewayError,
        errors.RateLimitError,
    )


@cache
def log_failed_deployments() -> None:
    """A warning for every call a deployment fails, naming it (`host:port`): with replicas, the
    Router then sets it aside and the caller never sees the error. Once per process."""
    import litellm  # noqa: PLC0415 - imported by now
    from litellm.integrations.custom_logger import CustomLogger  # noqa: PLC0415

    class FailedDeployments(CustomLogger):
        def log_failure_event(
            self, kwargs: dict[str, Any], response_obj: object, start_time: object, end_time: object
        ) -> None:
            del response_obj, start_time, end_time  # LiteLLM's signature
            params = kwargs.get("litellm_params") or {}
            where = address(params.get("api_base")) or str(kwargs.get("model", ""))
            error = type(kwargs.get("exception")).__name__
            logger.warning(
                "deployment %s failed (%s): set aside, a replica gets the call", where, error
            )

    litellm.callbacks.append(FailedDeployments())
