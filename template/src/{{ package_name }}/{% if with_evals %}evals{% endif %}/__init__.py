"""The eval suite that gates CI, and the canary probes: `eval` and `probe`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic_settings import SettingsConfigDict
from rich.console import Console
from rich.markup import escape

from ..config import Group, load

EXIT_GATE = 5


class EvalSettings(Group):
    model_config = SettingsConfigDict(env_prefix="EVAL_")

    cases: Path = Path("evals/cases.yaml")
    probes: Path = Path("evals/probes.yaml")
    baseline: Path = Path("evals/baseline.json")
    reports: Path = Path("build/evals")


def register(app: typer.Typer) -> None:
    """The `eval` and `probe` commands."""
    console = Console()

    @app.command("eval")
    def run_eval(
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
            bool, typer.Option(help="Record these figures as the baseline.")
        ] = False,
    ) -> None:
        """Index the documents (only what changed), run the eval cases, write the reports;
        exit 5 when a gate fails. With --fake: keywords only and a stand-in model, no model
        needed (the CI gate)."""
        from ..cli import App, handled  # noqa: PLC0415 - the CLI imports this module
        from ..ingest.pipeline import Ingestor  # noqa: PLC0415
        from . import report, run  # noqa: PLC0415
        from .cases import load_suite  # noqa: PLC0415

        with handled(), App.open() as ctx:
            options = load(EvalSettings, ctx.settings.secrets_dir)
            suite = load_suite(cases or options.cases)
            rag = ctx.rag(chat=run.ExtractiveModel(), lexical=True) if fake else ctx.rag()
            embeddings = rag.retriever.gateway
            Ingestor.from_settings(ctx.settings, ctx.store, embeddings).run(
                ctx.settings.retrieval.docs_path
            )
            referee = ctx.gateway if judge and not fake else None
            results, summary = run.evaluate(rag, suite, referee)
            baselines = (
                json.loads(options.baseline.read_text()) if options.baseline.is_file() else {}
            )
            baseline = baselines.get(summary.model)
            checks = run.gates(summary, suite, baseline)
            report.write(reports or options.reports, run.as_dict(results, summary, checks))
            if update_baseline:
                kept = {k: summary.figures[k] for k in ("pass_rate", "hit_rate", "mrr")}
                options.baseline.write_text(
                    json.dumps({**baselines, summary.model: kept}, indent=2) + "\n"
                )
        console.print(
            report.markdown(run.as_dict(results, summary, checks)), highlight=False, markup=False
        )
        if not all(check.ok for check in checks):
            raise typer.Exit(EXIT_GATE)

    @app.command()
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
