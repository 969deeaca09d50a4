"""The kept conversations of the caller (when CONVERSATIONS_KEEP_DAYS is above 0): listed, read,
deleted. A caller sees only its own: another's id answers 404, as an unknown one does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response

from ..conversations import ID_PATTERN, Conversation, Summary
from .routes import Caller, Shared  # noqa: TC001 - FastAPI reads the annotations at run time

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])
ConversationId = Annotated[str, Path(pattern=ID_PATTERN)]
_MISSING = "no such conversation: it may have expired or been deleted"


@router.get("", response_model=list[Summary])
def conversations(shared: Shared, who: Caller) -> list[Summary]:
    """Your conversations, most recent first (none when this server keeps none)."""
    kept = shared.conversations()
    return [] if kept is None else kept.summaries(who)


@router.get("/{conversation_id}", response_model=Conversation, responses={404: {}})
def conversation(conversation_id: ConversationId, shared: Shared, who: Caller) -> Conversation:
    """One of your conversations, with its questions, answers and sources, oldest first."""
    kept = shared.conversations()
    found = None if kept is None else kept.get(who, conversation_id)
    if found is None:
        raise HTTPException(404, detail=_MISSING)
    return found


@router.delete("/{conversation_id}", status_code=204, responses={404: {}})
def delete(conversation_id: ConversationId, shared: Shared, who: Caller) -> Response:
    """Delete one of your conversations, at once and for good."""
    kept = shared.conversations()
    if kept is None or not kept.delete(who, conversation_id):
        raise HTTPException(404, detail=_MISSING)
    return Response(status_code=204)
