"""Logs on stderr: one JSON object per event (or plain text), with trace id, model and version.

Every record passes a filter that adds the active trace id and scrubs the configured secret
values from the message, so a library that echoes a key cannot leak it into the logs.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from pythonjsonlogger.json import JsonFormatter

from .telemetry import Redactor, current_trace_id

if TYPE_CHECKING:
    from .settings import Settings

_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_HANDLER_NAME = "app-stderr"


class ContextFilter(logging.Filter):
    """Adds ``trace_id`` (and empty ``model``, ``model_version`` unless given), scrubs secrets."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.secrets_only(record.getMessage())
        record.args = None
        if not getattr(record, "trace_id", None):
            record.trace_id = current_trace_id()
        if not hasattr(record, "model"):
            record.model = None
        if not hasattr(record, "model_version"):
            record.model_version = None
        return True


def configure_logging(settings: Settings, *, level: int = logging.WARNING) -> logging.Handler:
    """Replace the app's stderr handler with one in LOG_FORMAT; returns it."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(_FIELDS, rename_fields={"levelname": "level", "asctime": "time"})
        )
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ContextFilter(Redactor(tuple(settings.secret_values()))))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
