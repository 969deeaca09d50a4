"""What the routes share, opened once in the app's lifespan: the index, the model gateway, the
RAG pipeline, API keys, limits, feedback and the kept conversations; and the readiness checks,
run in a thread of their own so a probe never waits on a model."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException
from pydantic import BaseModel

from .. import APP_NAME, conversations, feedback
from ..config import Settings, load
from ..conversation import MAX_TURN_CHARS, Turn, bounded
from ..errors import AppError
from ..llm import Gateway
from ..rag import Rag
from ..store import Store, open_store
from . import keys
from .limits import RETRY_SECONDS, Limits, LimitSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..conversations import ConversationStore
    from ..feedback import FeedbackStore
    from ..rag import Answer

logger = logging.getLogger(__name__)


class Check(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Check]


class Services:
    """What the routes share, opened once; a part that failed to open keeps its reason."""

    def __init__(
        self,
        settings: Settings,
        store: Store | None,
        gateway: Gateway | None,
        *,
        host: str,
    ) -> None:
        self.settings = settings
        self.problems: dict[str, str] = {}
        self.store = store or self._try("store", lambda: open_store(settings))
        self.gateway = gateway or self._try("model", lambda: Gateway(settings))
        self.rag: Rag | None = None
        if self.store is not None and self.gateway is not None:
            self.rag = Rag.from_settings(settings, self.store, self.gateway)
        self._ready: tuple[float, Readiness] | None = None
        self._checking: asyncio.Future[Readiness] | None = None
        self._probes = ThreadPoolExecutor(1, thread_name_prefix="readiness")
        self._feedback: FeedbackStore | None = None
        self._feedback_lock = threading.Lock()
        self._conversations: ConversationStore | None = None
        self._keep = load(conversations.ConversationSettings, settings.secrets_dir).keep_days > 0
        key_settings = load(keys.KeySettings, settings.secrets_dir)
        self.keys = keys.KeyStore(key_settings.keys_path)
        self.keys_required = keys.required(key_settings, host)
        self.limits = Limits(load(LimitSettings, settings.secrets_dir))
        self._say_who_may_call(host)

    def _try(self, part: str, open_it: Any) -> Any:  # noqa: ANN401 - whatever the part is
        try:
            return open_it()
        except AppError as exc:
            self.problems[part] = str(exc)
            logger.warning("%s unavailable: %s", part, exc)
            return None

    def _say_who_may_call(self, host: str) -> None:
        if not self.keys_required:
            if not keys.is_loopback(host):
                logger.warning("API_REQUIRE_KEY=false on %s: anyone who reaches it may call", host)
            return
        try:
            count = len(self.keys.keys())
        except AppError as exc:
            logger.warning("API keys unavailable: %s", exc)
            return
        if not count:
            logger.warning(
                "the API needs a key (it listens on %s) and has none: create one with "
                "`%s keys create NAME`",
                host,
                APP_NAME,
            )

    async def readiness(self, ttl: float) -> Readiness:
        """Store and model checks, reused for `ttl` seconds and refreshed in a thread of their
        own: a probe gets the last result at once while the next one is taken."""
        if self._ready is not None and time.monotonic() - self._ready[0] <= ttl:
            return self._ready[1]
        if self._checking is None or self._checking.done():
            loop = asyncio.get_running_loop()
            self._checking = loop.run_in_executor(self._probes, self._check)
        if self._ready is not None:
            return self._ready[1]
        return await asyncio.shield(self._checking)

    def _check(self) -> Readiness:
        checks = {"store": self._store_check(), "model": self._model_check()}
        ready = Readiness(ready=all(c.ok for c in checks.values()), checks=checks)
        before = self._ready[1] if self._ready else None
        if before is None or before.ready != ready.ready:  # say when readiness changes, once
            if ready.ready:
                logger.info("ready: %s", "; ".join(c.detail for c in checks.values()))
            else:
                why = "; ".join(f"{name}: {c.detail}" for name, c in checks.items() if not c.ok)
                logger.warning("not ready: %s", why)
        self._ready = (time.monotonic(), ready)
        return ready

    def _store_check(self) -> Check:
        if self.store is None:
            return Check(ok=False, detail=self.problems["store"])
        try:
            count = self.store.count()
        except AppError as exc:
            return Check(ok=False, detail=str(exc))
        return Check(
            ok=True,
            detail=f"{self.store.name}: {count} chunks" + ("" if count else " (run ingest)"),
        )

    def _model_check(self) -> Check:
        if self.gateway is None:
            return Check(ok=False, detail=self.problems["model"])
        health = self.gateway.health()
        return Check(ok=health.ok, detail=health.detail)

    def ready_rag(self) -> Rag:
        if self.rag is None:
            raise HTTPException(
                503,
                detail="; ".join(self.problems.values()),
                headers={"Retry-After": str(RETRY_SECONDS)},
            )
        return self.rag

    def feedback_store(self) -> FeedbackStore:
        """The feedback store, opened on first use (and tried again after a failure)."""
        with self._feedback_lock:
            if self._feedback is None:
                self._feedback = feedback.open_store(self.settings)
            return self._feedback

    def conversations(self) -> ConversationStore | None:
        """The kept conversations, opened on first use; None when they are off."""
        with self._feedback_lock:
            if self._conversations is None and self._keep:
                self._conversations = conversations.open_store(self.settings)
            return self._conversations

    def conversation(
        self, who: str, asked: str | None, history: Sequence[Turn]
    ) -> tuple[str | None, list[Turn]]:
        """The conversation a question belongs to and the history to answer it with: the id
        asked for (a new one when none is; None when conversations are off), and the history
        as sent, else the conversation's kept turns (bounded). Another caller's id is a 404."""
        kept = self.conversations()
        if asked is None:
            return (None if kept is None else conversations.new_id()), list(history)
        found = None if kept is None else kept.get(who, asked)
        if found is None:
            raise HTTPException(
                404,
                detail="no such conversation (it may have expired, or this server keeps none): "
                "leave conversation_id out to start one, or send the history",
            )
        if history:
            return asked, list(history)
        turns = [
            turn
            for item in found.items
            for turn in (
                Turn(role="user", content=item.question[:MAX_TURN_CHARS]),
                Turn(role="assistant", content=item.answer[:MAX_TURN_CHARS]),
            )
        ]
        return asked, bounded(turns, self.settings.retrieval)

    def keep(self, who: str, conversation_id: str | None, question: str, answer: Answer) -> None:
        """Keep a question and its answer in the caller's conversation (when they are kept)."""
        kept = self.conversations()
        if kept is None or conversation_id is None:
            return
        sources = [s.path + (f" > {s.heading}" if s.heading else "") for s in answer.sources]
        turn = conversations.KeptTurn(
            question=question,
            answer=answer.answer,
            rewritten_question=answer.rewritten_question,
            trace_id=answer.trace_id,
            sources=sources,
        )
        kept.add(who, conversation_id, turn)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        if self._feedback is not None:
            self._feedback.close()
        if self._conversations is not None:
            self._conversations.close()
        self._probes.shutdown(wait=False, cancel_futures=True)
