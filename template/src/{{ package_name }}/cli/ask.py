"""`ask` one question, or `chat` (a conversation: follow-ups are answered in its context):
answers with their sources and what they cost."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .common import INTERRUPTED, App, console, errors, handled

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from ..conversation import Turn
    from ..rag import Answer, Rag


def register(app: typer.Typer) -> None:
    app.command()(ask)
    app.command()(chat)


@contextmanager
def waiting(*, show: bool) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr while a terminal waits for the first token: say what it waits for
    (`say`), or stop it (`say("")`). Nothing when stderr is not a terminal."""
    if not show or not errors.is_terminal:
        yield lambda _: None
        return
    status = errors.status("[dim]searching…[/]")
    status.start()

    def say(what: str) -> None:
        if what:
            status.update(f"[dim]{what}[/]")
            status.start()
        else:
            status.stop()

    try:
        yield say
    finally:
        status.stop()


def answer_stream(
    rag: Rag, question: str, top_k: int | None, *, show: bool, history: Sequence[Turn] = ()
) -> Iterator[str | Answer]:
    """The answer's text as it comes, then the `Answer`; a spinner until the first token, and
    (when `show`) the question searched for, dimmed, when a follow-up was rewritten."""
    from ..rag import Retrieved

    with waiting(show=show) as say:
        for item in rag.stream(question, top_k, history=history):
            if isinstance(item, Retrieved):
                if show and item.rewritten_question:
                    say("")
                    console.print(
                        f"[dim]searched for: {escape(item.rewritten_question)}[/]", highlight=False
                    )
                say("waiting for the model (loaded on first use)…")
            else:
                say("")
                yield item


def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.", show_default=False)],
    top_k: Annotated[
        int | None, typer.Option("--top-k", "-k", min=1, max=50, help="Sources to use.")
    ] = None,
    stream: Annotated[
        bool, typer.Option("--stream", help="Print the answer as it is generated.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the answer and its sources as JSON.")
    ] = False,
) -> None:
    """Answer one question from the indexed documents, citing its sources."""
    from ..rag import Answer

    with handled(), App.open() as ctx:
        answer: Answer | None = None
        for item in answer_stream(ctx.rag(), question, top_k, show=not as_json):
            if isinstance(item, Answer):
                answer = item
            elif stream and not as_json:
                console.print(item, end="", highlight=False, markup=False)
    assert answer is not None  # noqa: S101 - the stream always ends with one
    if as_json:
        typer.echo(answer.model_dump_json(indent=2))
    else:
        if stream:
            console.print()
        print_answer(answer, text=not stream)


def print_answer(answer: Answer, *, text: bool = True) -> None:
    """The answer, its sources (cited ones marked) and what it cost."""
    if text:
        console.print(escape(answer.answer), highlight=False)
    table = Table(show_edge=False, box=None, padding=(0, 1))
    for column in ("#", "source", "cited"):
        table.add_column(column)
    for source in answer.sources:
        where = source.path + (f" > {source.heading}" if source.heading else "")
        table.add_row(f"[{source.n}]", escape(where), source.citation or "")
    if answer.sources:
        console.print(table)
    how = answer.retrieval.mode + (
        f": {answer.retrieval.reason}" if answer.retrieval.reason else ""
    )
    console.print(
        f"[dim]{answer.model or 'no model call'} · {answer.usage.completion_tokens} tokens · "
        f"{answer.latency_ms:.0f} ms · {how} · trace {answer.trace_id}[/]",
        highlight=False,
    )


def chat(
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, max=50)] = None,
) -> None:
    """A conversation: ask one question after another (answers stream in, follow-ups are
    understood in context); /new starts over; exit, Ctrl-D or Ctrl-C leaves."""
    from ..conversation import MAX_TURN_CHARS, Turn, bounded
    from ..errors import AppError
    from ..rag import Answer

    with handled(), App.open() as ctx:
        rag = ctx.rag()
        history: list[Turn] = []
        console.print(
            "[dim]Ask about your documents; follow-ups are answered in context. "
            "Type /new to start a new conversation, exit or Ctrl-D to leave.[/]"
        )
        try:
            while True:
                try:
                    question = console.input("[bold cyan]?[/] ").strip()
                except EOFError:
                    return
                if question.lower() in {"exit", "quit"}:
                    return
                if not question:
                    continue
                if question.lower() == "/new":
                    history = []
                    console.print("[dim]New conversation.[/]")
                    continue
                try:
                    for item in answer_stream(rag, question, top_k, show=True, history=history):
                        if isinstance(item, Answer):
                            console.print()
                            print_answer(item, text=False)
                            asked = Turn(role="user", content=question[:MAX_TURN_CHARS])
                            said = Turn(role="assistant", content=item.answer[:MAX_TURN_CHARS])
                            history = bounded([*history, asked, said], ctx.settings.retrieval)
                        else:
                            console.print(item, end="", highlight=False, markup=False)
                except AppError as exc:
                    errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        except KeyboardInterrupt:  # Ctrl-C leaves quietly, with the shell's code for it
            console.print()
            raise typer.Exit(INTERRUPTED) from None
