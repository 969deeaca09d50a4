"""Errors a model call can end in, each with a message that says what to do next."""

from __future__ import annotations

from ..settings import AppError  # noqa: TID252 - see runners/__init__.py


class GatewayError(AppError):
    """A model call failed for a reason the user can act on."""


class RunnerUnavailableError(GatewayError):
    """The model runner is down, unreachable, or failed to load its model."""


class ModelNotFoundError(GatewayError):
    """The runner is up but does not have the configured model."""


class ProviderAuthError(GatewayError):
    """The provider refused the API key."""


class PromptTooLongError(GatewayError):
    """The prompt and the answer budget do not fit the model's context window."""


class RateLimitedError(GatewayError):
    """The provider asked us to slow down; retries were exhausted."""
