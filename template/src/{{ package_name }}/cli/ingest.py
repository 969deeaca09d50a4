"""`ingest`: index a folder, with a progress bar while a terminal watches."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .common import App, console, errors, handled

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ..ingest.pipeline import Report, Step


def register(app: typer.Typer) -> None:
    app.command()(ingest)


def ingest(
    folder: Annotated[
        Path | None,
        typer.Argument(help="The folder to index (default: RAG_DOCS_PATH).", show_default=False),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option(help="Index everything again into a new index, swapped in at the end.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Index Markdown, text, HTML and PDF files; only new or changed files are processed.

    Files that cannot be read (broken, too large, links out of the folder) are skipped and
    listed. Vectors come from the embedding model in llm.yaml, unless RAG_LEXICAL_ONLY=true.

    Stopped part way (Ctrl-C, a kill), it goes on where it stopped when run again.
    """
    from ..ingest.pipeline import Ingestor

    with handled(), App.open() as ctx:
        ingestor = Ingestor.from_settings(ctx.settings, ctx.store, ctx.gateway)
        target = folder or ctx.settings.retrieval.docs_path
        if as_json:
            report = ingestor.run(target, rebuild=rebuild)
        else:
            with ingest_progress() as progress:
                report = ingestor.run(target, rebuild=rebuild, progress=progress)
    if as_json:
        typer.echo(json.dumps(asdict(report), indent=2))
    else:
        _print_report(report)


@contextmanager
def ingest_progress() -> Iterator[Callable[[Step], None]]:
    """A bar on stderr while a terminal watches: files, chunks embedded, the time left (from
    the bytes done so far), the file at hand and its chunks."""
    with Progress(
        TextColumn("Indexing"), BarColumn(), TextColumn("{task.fields[files]}"),
        TextColumn("{task.fields[embedded]}"), TimeRemainingColumn(compact=True),
        TextColumn("{task.fields[left]}"), TextColumn("[dim]{task.description}"),
        console=errors, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("", total=None, files="", embedded="", left="")

        def show(step: Step) -> None:
            chunks = f" ({step.chunks_done}/{step.chunks} chunks)" if step.chunks else ""
            bar.update(
                task,
                completed=step.bytes_done,
                total=step.bytes or None,
                description=escape(step.source) + chunks,
                files=f"{step.files_done}/{step.files} files",
                embedded=f"{step.embedded:,} chunks embedded" if step.embedded else "",
                left="left" if step.bytes else "",
            )

        yield show


def _print_report(report: Report) -> None:
    if report.skipped:
        table = Table("skipped", "reason", show_edge=False, title_justify="left")
        for source, reason in report.skipped.items():
            table.add_row(escape(source), escape(reason))
        console.print(table)
    search = "keywords + vectors" if report.mode == "hybrid" else "keywords only (RAG_LEXICAL_ONLY)"
    console.print(
        f"[bold]{report.indexed}[/] indexed, {report.unchanged} unchanged, "
        f"{len(report.skipped)} skipped, {len(report.removed)} removed: "
        f"{report.chunks_added} chunks added, {report.chunks} in the index ({search})",
        highlight=False,
    )
