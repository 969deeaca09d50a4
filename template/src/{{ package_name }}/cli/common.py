"""What the commands share: the consoles, errors as messages and exit codes, and the app's parts
(settings, index, model gateway) opened once per command.

Exit codes: 1 an unexpected error (a bug: report it), 2 settings or input, 3 the index, 4 the
model, 5 a failed gate (an eval, a probe, the doctor's preflight), 6 ingest, 7 a file or disk (no
space, no permission, read-only), 130 interrupted.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import AppError, DiskError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..config import Settings
    from ..llm import ChatModel, Gateway
    from ..rag import Rag
    from ..store import Store

console = Console()
errors = Console(stderr=True)
INTERRUPTED = 130


def fail(message: str, code: int) -> NoReturn:
    """Print an error for people and exit with `code`."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def handled() -> Iterator[None]:
    """The app's errors as messages and exit codes; anything else is a bug, said plainly."""
    try:
        yield
    except typer.Exit:
        raise
    except AppError as exc:
        fail(str(exc), exc.exit_code)
    except OSError as exc:  # a full disk, a read-only folder, no permission: not a bug
        fail(str(DiskError.of(exc)), DiskError.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", INTERRUPTED)
    except Exception as exc:
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        fail(f"unexpected error, a bug ({type(exc).__name__}: {exc}); run with -v for details", 1)


@dataclass
class App:
    """What the commands share, opened once per command (the heavy modules load here, so
    `--help` never waits for them)."""

    settings: Settings
    store: Store
    gateway: Gateway

    @classmethod
    @contextmanager
    def open(cls) -> Iterator[App]:
        from ..config import load_settings
        from ..llm import Gateway
        from ..store import open_store

        settings = load_settings()
        gateway = Gateway(settings)
        store = open_store(settings)
        try:
            yield cls(settings, store, gateway)
        finally:
            store.close()

    def rag(self, *, chat: ChatModel | None = None, lexical: bool = False) -> Rag:
        """Answering over the index: vectors unless `lexical`, the gateway's chat unless `chat`."""
        from ..rag import Rag

        return Rag.from_settings(self.settings, self.store, self.gateway, chat=chat, lexical=lexical)
