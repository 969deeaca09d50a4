"""One hierarchy for the errors the app explains: the CLI prints the message and exits with the
code, the API answers with the status; anything else is a bug and gets exit code 1 or a 500."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pydantic import ValidationError


class AppError(Exception):
    """An error with a message for people: what went wrong and what to do about it."""

    exit_code = 1
    http_status = 500


class ConfigError(AppError):
    """The configuration cannot work as given; the message names the setting to change."""

    exit_code = 2
    http_status = 503


class StoreError(AppError):
    """The index cannot be opened, read or written (a missing file, a full disk, no server)."""

    exit_code = 3
    http_status = 503


class ModelError(AppError):
    """The model failed or refused: a missing model, a rejected key, a prompt too long."""

    exit_code = 4
    http_status = 502


class ModelUnavailableError(ModelError):
    """The runner cannot be reached or is saturated; retrying later may work."""

    http_status = 503


class InputError(AppError):
    """What was given (an option, a field) is not valid; the message names it."""

    exit_code = 2
    http_status = 422


class QuestionError(InputError):
    """The question cannot be asked as given (empty, too long)."""


class DiskError(AppError):
    """A file or folder cannot be read or written: no space left, no permission, a read-only
    disk. Raised for the app's own files (reports, exports); the index says StoreError."""

    exit_code = 7
    http_status = 503

    @classmethod
    def of(cls, exc: OSError, doing: str = "use") -> DiskError:
        """The OS's error as one line: what could not be done to which file, and why."""
        where = f" {exc.filename}" if exc.filename else ""
        return cls(f"cannot {doing}{where}: {exc.strerror or exc}")


class IngestError(AppError):
    """Documents cannot be indexed as asked (a broken embedding model, a wrong vector size)."""

    exit_code = 6
    http_status = 500


def problems(
    exc: ValidationError,
    *,
    prefix: str = "",
    variables: bool = False,
    first: bool = False,
    at: Sequence[str | int] = (),
    line: Callable[[Sequence[str | int]], int | None] | None = None,
    known: Sequence[str] = (),
) -> str:
    """Pydantic's validation errors as one line, `where: what; where: what`: each place in the
    data and what is wrong there. `at`: where the data sits in a larger document; `line`: the
    line of a place in its file, shown first; an unknown key is named as such, with the closest
    of the `known` names; with `variables`, the place as an environment variable (`prefix` and
    the field's name, upper case). `first`: the first problem only."""
    found = []
    for error in exc.errors()[:1] if first else exc.errors():
        location = [*at, *error["loc"]]
        where = ".".join(str(part) for part in location)
        where = f"{prefix}{where}".upper() if variables else where
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(location[-1]), known, n=1, cutoff=0.75)
            message = "unknown key" + (f" (did you mean {close[0]}?)" if close else "")
        number = line(location) if line is not None else None
        where = f"line {number}, {where}" if number else where
        found.append(f"{where}: {message}" if where else message)
    return "; ".join(found)
