"""The command line: one module per feature in this package, each adding its commands with
`register(app)`; a feature the project did not choose has no module, so no command.

A module may also define `start()`, run before any command (not for `--help`). The commands
import the modules that do the work when they run, so `--help` answers at once.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from typing import TYPE_CHECKING, Annotated, Protocol, cast

import typer

from .. import APP_NAME

if TYPE_CHECKING:
    from collections.abc import Callable


class Feature(Protocol):
    """A module of this package: its commands."""

    def register(self, app: typer.Typer) -> None: ...


app = typer.Typer(
    name=APP_NAME,
    help="Answer questions about your documents, with citations, from a local or hosted model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    epilog="Settings: the environment and .env (see .env.example); models: llm.yaml.",
)
FEATURES = [
    cast("Feature", importlib.import_module(f"{__name__}.{module.name}"))
    for module in pkgutil.iter_modules(__path__)
    if module.name != "common" and not module.name.startswith("_")
]


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log to stderr.")] = False,
) -> None:
    """Settings come from the environment and .env; every variable is in .env.example."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for feature in FEATURES:
        start: Callable[[], None] | None = getattr(feature, "start", None)
        if start is not None:
            start()


for _feature in FEATURES:
    _feature.register(app)
