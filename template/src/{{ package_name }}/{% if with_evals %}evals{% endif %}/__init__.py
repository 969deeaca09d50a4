"""The eval suite that gates CI, drafts of cases from the documents, and the canary probes:
`eval`, `eval draft` and `probe`."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic_settings import SettingsConfigDict
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ..config import Group, load

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..cli import App
    from ..config import Settings
    from ..store import Chunk

EXIT_GATE = 5
console = Console()
errors = Console(stderr=True)
INDEX = "evals"
"""The eval's own index (build/index/evals.sqlite3, or Postgres tables `<prefix>_evals_*`): the
documents folder only, whatever else was ingested into the main index."""


class EvalSettings(Group):
    model_config = SettingsConfigDict(env_prefix="EVAL_")

    cases: Path = Path("evals/cases.yaml")
    probes: Path = Path("evals/probes.yaml")
    baseline: Path = Path("evals/baseline.json")
    reports: Path = Path("build/evals")
    drafts: Path = Path("evals/drafts.yaml")


@contextmanager
def _indexed(*, lexical: bool) -> Iterator[tuple[App, list[str]]]:
    """The app on the eval's own index, brought in line with the documents folder (RAG_DOCS_PATH,
    with ingest's limits), and the sources it holds."""
    from ..cli import App  # noqa: PLC0415 - the CLI imports this module
    from ..ingest.pipeline import Ingestor  # noqa: PLC0415
    from ..store import open_store  # noqa: PLC0415

    with App.open() as main:
        store = open_store(main.settings, INDEX)
        try:
            ctx = replace(main, store=store)
            gateway = None if lexical else ctx.gateway
            Ingestor.from_settings(ctx.settings, store, gateway).run(
                ctx.settings.retrieval.docs_path
            )
            yield ctx, sorted(store.fingerprints())
        finally:
            store.close()


def _chunks(ctx: App) -> list[Chunk]:
    """The documents folder's chunks as ingest makes them, within its limits (files that fail
    are skipped)."""
    from ..ingest.pipeline import Ingestor  # noqa: PLC0415

    ingestor = Ingestor.from_settings(ctx.settings, ctx.store, None)
    return list(ingestor.chunks(ctx.settings.retrieval.docs_path))


def _short(settings: Settings, tokens: int) -> Settings:
    """The settings with answers cut at `tokens`."""
    return replace(settings, model=settings.model.model_copy(update={"max_answer_tokens": tokens}))


def register(app: typer.Typer) -> None:
    """The `eval`, `eval draft` and `probe` commands."""
    evals = typer.Typer(invoke_without_command=True)
    evals.callback()(run_eval)
    evals.command("draft")(draft_cases)
    app.add_typer(evals, name="eval")
    app.command()(probe)


def run_eval(
    context: typer.Context,
    *,
    fake: Annotated[
        bool, typer.Option(help="A deterministic stand-in model: seconds, for CI.")
    ] = False,
    cases: Annotated[Path | None, typer.Option(help="Cases file (EVAL_CASES).")] = None,
    reports: Annotated[Path | None, typer.Option(help="Reports folder (EVAL_REPORTS).")] = None,
    judge: Annotated[
        bool,
        typer.Option(help="Ask the chat model whether each answer is supported (not --fake)."),
    ] = True,
    update_baseline: Annotated[
        bool,
        typer.Option(help="Record these figures as this model's baseline (EVAL_BASELINE)."),
    ] = False,
) -> None:
    """Run the eval cases (the CI gate); `eval draft` drafts cases about your documents.

    The documents folder is indexed first into the eval's own index (only what changed), then
    every case is asked and the reports written; exit 5 when a gate fails. With --fake: keywords
    only and a stand-in model, no model needed (the CI gate).
    """
    if context.invoked_subcommand is not None:
        return
    from .. import APP_NAME  # noqa: PLC0415
    from ..cli import handled  # noqa: PLC0415 - the CLI imports this module
    from . import report, run  # noqa: PLC0415
    from .cases import load_suite  # noqa: PLC0415

    recorded = None
    with handled(), _indexed(lexical=fake) as (ctx, indexed):
        options = load(EvalSettings, ctx.settings.secrets_dir)
        suite = load_suite(cases or options.cases)
        rag = ctx.rag(chat=run.ExtractiveModel(), lexical=True) if fake else ctx.rag()
        results, summary = run.evaluate(rag, suite, ctx.gateway if judge and not fake else None)
        baselines = json.loads(options.baseline.read_text()) if options.baseline.is_file() else {}
        coverage = run.coverage(suite, indexed, ctx.settings.retrieval.docs_path, APP_NAME)
        if update_baseline and coverage.ok:
            baselines[summary.model] = {k: summary.figures[k] for k in run.BASELINE}
            options.baseline.write_text(json.dumps(baselines, indent=2) + "\n")
            recorded = f"baseline for {summary.model} recorded in {options.baseline}"
        checks = [coverage, *run.gates(summary, suite, baselines.get(summary.model))]
        data = run.as_dict(results, summary, checks)
        report.write(reports or options.reports, data)
    console.print(report.markdown(data), highlight=False, markup=False, soft_wrap=True)
    if recorded:
        errors.print(escape(recorded), highlight=False, soft_wrap=True)
    if not coverage.ok:
        errors.print(
            "[bold red]error:[/] "
            + ("baseline not recorded: " if update_baseline else "")
            + escape(coverage.detail),
            highlight=False,
            soft_wrap=True,
        )
    if not all(check.ok for check in checks):
        raise typer.Exit(EXIT_GATE)


def draft_cases(
    *,
    count: Annotated[int, typer.Option(min=1, max=200, help="Cases to draft.")] = 10,
    seed: Annotated[int, typer.Option(help="Which passages are sampled.")] = 0,
    output: Annotated[
        Path | None, typer.Option(help="Where the drafts go (EVAL_DRAFTS).", show_default=False)
    ] = None,
    fake: Annotated[
        bool, typer.Option(help="A deterministic stand-in model (fill-in-the-blank questions).")
    ] = False,
) -> None:
    """Draft eval cases about your documents into a file to review.

    The chat model writes a question and its answer for sampled passages. The drafts file is a
    whole cases file (your thresholds, the drafts, each with its passage, then the cases that
    still name indexed documents): review it, move it to evals/cases.yaml, then record the
    baseline (`make eval-baseline`).
    """
    from ..cli import App, handled  # noqa: PLC0415 - the CLI imports this module
    from ..errors import InputError, ModelError  # noqa: PLC0415
    from ..llm import Gateway  # noqa: PLC0415
    from . import draft, run  # noqa: PLC0415
    from .cases import load_suite  # noqa: PLC0415

    with handled(), App.open() as ctx:
        options = load(EvalSettings, ctx.settings.secrets_dir)
        docs = ctx.settings.retrieval.docs_path
        chunks = _chunks(ctx)
        passages = draft.sample(chunks, count * 3, seed)
        if not passages:
            raise InputError(
                f"no passage to draft from in {docs}: add documents (Markdown, text, HTML, PDF) "
                "or set RAG_DOCS_PATH"
            )
        suite = load_suite(options.cases) if options.cases.is_file() else None
        sources = {chunk.source for chunk in chunks}
        kept = [
            case.model_dump(exclude_defaults=True)
            for case in (suite.cases if suite else [])
            if not run.missing_sources(case, sources)
        ]
        model = draft.ClozeModel() if fake else Gateway(_short(ctx.settings, draft.MAX_TOKENS))
        with Progress(
            TextColumn("Drafting"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[dim]{task.description}"), console=errors, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task("", total=count)
            drafts = draft.draft(
                model,
                passages,
                count,
                {case["id"] for case in kept},
                lambda done, total, item: bar.update(
                    task, completed=done, total=total, description=item
                ),
            )
        dropped = ", ".join(f"{n} {why}" for why, n in drafts.dropped.most_common())
        if not drafts.cases:
            raise ModelError(
                f"{model.chat_model} drafted no usable case from {drafts.tried} passages "
                f"({dropped}): try another --seed, a larger chat model, or write cases by hand"
            )
        target = output or options.drafts
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            draft.header(docs, model.chat_model, seed) + draft.dump(suite, drafts.cases + kept),
            encoding="utf-8",
        )
    errors.print(
        f"{len(drafts.cases)} cases drafted from {drafts.tried} passages"
        + (f" ({sum(drafts.dropped.values())} dropped: {dropped})" if drafts.dropped else "")
        + f", {len(kept)} kept from {options.cases}: wrote {target}. Review it, move it to "
        f"{options.cases}, then `make eval-baseline`.",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


def probe() -> None:
    """Ask the model the canary prompts (evals/probes.yaml); exit 5 when one fails."""
    from ..cli import handled  # noqa: PLC0415
    from ..config import load_settings  # noqa: PLC0415
    from ..llm import Gateway  # noqa: PLC0415
    from .cases import load_probes  # noqa: PLC0415
    from .run import run_probes  # noqa: PLC0415

    with handled():
        settings = load_settings()
        results = run_probes(
            Gateway(settings), load_probes(load(EvalSettings, settings.secrets_dir).probes)
        )
    for result in results:
        console.print(
            f"{'ok  ' if result.ok else 'FAIL'} {result.name}: {escape(result.detail)}",
            highlight=False,
        )
    if not all(result.ok for result in results):
        raise typer.Exit(EXIT_GATE)
