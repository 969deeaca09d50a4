"""The command line: the project's main entry point."""

from __future__ import annotations

from typing import Annotated

import typer

from . import __version__

app = typer.Typer(no_args_is_help=True, help=__doc__, rich_markup_mode="rich")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Run `--help` on any command to see what it does."""


@app.command()
def about() -> None:
    """Print the project's name and version."""
    typer.echo(f"{__package__} {__version__}")
