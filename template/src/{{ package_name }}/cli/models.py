"""`models pull` and `models list`: the model files of the runner (MODEL_RUNNER)."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from .common import console, handled

commands = typer.Typer(help="The model files of the runner (MODEL_RUNNER): pull and list.")


def register(app: typer.Typer) -> None:
    app.add_typer(commands, name="models")


@commands.command("pull")
def models_pull() -> None:
    """Download what the runner needs, pinned by revision and checked by sha256 (llm.yaml)."""
    from .. import models
    from ..config import load_settings
    from ..llm import Gateway

    with handled():
        settings = load_settings()
        models.pull(
            Gateway(settings), settings, lambda line: console.print(escape(line), highlight=False)
        )


@commands.command("list")
def models_list() -> None:
    """The runner's models and whether their files are in place."""
    from .. import models
    from ..config import load_settings
    from ..llm import Gateway

    with handled():
        gateway = Gateway(load_settings())
        table = Table("alias", "model", "file", "present", show_edge=False)
        for model in models.files(gateway):
            present = "yes" if model.present else ("no: run `models pull`" if model.path else "-")
            table.add_row(
                model.deployment.model_name, model.deployment.label, str(model.path or "-"), present
            )
        console.print(table)
        health = gateway.health()
        console.print(
            f"{gateway.runner}: {'ok' if health.ok else 'not ready'}, {escape(health.detail)}"
        )
