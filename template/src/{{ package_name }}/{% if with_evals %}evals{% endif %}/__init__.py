"""The eval suite that gates CI, drafts of cases from the documents, and the canary probes:
`eval`, `eval draft` and `probe`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic_settings import SettingsConfigDict

from ..config import Group

if TYPE_CHECKING:
    from ..config import Settings
    from ..llm import Gateway
    from ..store import Chunk, Store

EXIT_GATE = 5
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


def sync(settings: Settings, store: Store, gateway: Gateway | None) -> list[str]:
    """Bring the eval's index in line with the documents folder (RAG_DOCS_PATH, with ingest's
    limits; keywords only without a gateway); the sources it holds."""
    from ..ingest.pipeline import Ingestor  # noqa: PLC0415 - only evals that index need it

    Ingestor.from_settings(settings, store, gateway).run(settings.retrieval.docs_path)
    return sorted(store.fingerprints())


def chunks(settings: Settings, store: Store) -> list[Chunk]:
    """The documents folder's chunks as ingest makes them, within its limits (files that fail
    are skipped)."""
    from ..ingest.pipeline import Ingestor  # noqa: PLC0415 - only evals that draft need it

    return list(Ingestor.from_settings(settings, store, None).chunks(settings.retrieval.docs_path))


def short(settings: Settings, tokens: int) -> Settings:
    """The settings with answers cut at `tokens`."""
    return replace(settings, model=settings.model.model_copy(update={"max_answer_tokens": tokens}))
