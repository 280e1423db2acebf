"""`/v1/customers/{id}/inbox`: the in_app channel's inbox (list, mark read, live stream,
answer a survey).

The channel app's backend (a `publisher` key) shows each customer their inbox; operators may
list it too, for support. New messages are streamed with Server-Sent Events from the
customer's Redis pub/sub channel (the in_app connector publishes each one there).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Security
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from orchestrator import jsonwire
from orchestrator.api.access import authorize
from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.ingest import publish_all
from orchestrator.api.state import AppState, app_state
from orchestrator.contracts.surveys import InvalidScoreError, SurveyAnswer
from orchestrator.control.inbox import Inbox

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/customers",
    tags=["inbox"],
    dependencies=[Security(authorize)],
    responses=error_responses({}),
)


class InboxEntry(BaseModel):
    """One in-app message."""

    id: str
    title: str
    body: str
    at: str
    read: bool
    journey: str | None
    step: str | None
    survey: str | None = None


class InboxPage(BaseModel):
    """A customer's inbox, newest first."""

    customer_id: str
    unread: int
    messages: list[InboxEntry]


def _inbox(state: AppState) -> Inbox:
    return Inbox(state.redis, state.keys, state.settings.inbox_max_messages)


@router.get("/{customer_id}/inbox", name="list_inbox", response_model=InboxPage)
async def list_inbox(
    customer_id: str,
    state: Annotated[AppState, Depends(app_state)],
    unread_only: Annotated[bool, Query(description="only messages not yet read")] = False,
) -> InboxPage:
    """The customer's in-app messages, newest first (an unknown customer's inbox is empty)."""
    async with state.redis_call():
        messages = await _inbox(state).list(customer_id, unread_only)
    return InboxPage(
        customer_id=customer_id,
        unread=sum(not m.read for m in messages),
        messages=[InboxEntry(**m.to_dict()) for m in messages],
    )


@router.post(
    "/{customer_id}/inbox/{message_id}/read",
    name="read_inbox_message",
    response_model=InboxEntry,
    responses=error_responses({404: "No such message in the customer's inbox"}),
)
async def read_inbox_message(
    customer_id: str, message_id: str, state: Annotated[AppState, Depends(app_state)]
) -> InboxEntry:
    """Mark one message read (idempotent); answers the message."""
    async with state.redis_call():
        message = await _inbox(state).mark_read(customer_id, message_id)
    if message is None:
        raise ApiError(
            404,
            "message_not_found",
            f"customer {customer_id!r} has no message {message_id!r} in their inbox "
            "(it may have been trimmed: inboxes keep the newest messages only)",
        )
    return InboxEntry(**message.to_dict())


class SurveyAnswerIn(BaseModel):
    """The in-app survey widget's answer to one inbox message."""

    score: int = Field(description="0-10 for nps, 1-5 for csat")
    comment: str = Field("", max_length=2000)


class SurveyAnswerOut(BaseModel):
    """The `survey.answered` event published."""

    event_id: str
    survey: str
    score: int


@router.post(
    "/{customer_id}/inbox/{message_id}/answer",
    name="answer_inbox_survey",
    response_model=SurveyAnswerOut,
    status_code=202,
    responses=error_responses(
        {
            404: "No such message in the customer's inbox",
            409: "The message asks no survey question",
            422: "The score is off the survey's scale",
        }
    ),
)
async def answer_inbox_survey(
    customer_id: str,
    message_id: str,
    body: SurveyAnswerIn,
    state: Annotated[AppState, Depends(app_state)],
) -> SurveyAnswerOut:
    """Publish `survey.answered` for a survey message of the inbox (202 once Kafka has it)."""
    async with state.redis_call():
        message = await _inbox(state).get(customer_id, message_id)
    if message is None:
        raise ApiError(
            404, "message_not_found",
            f"customer {customer_id!r} has no message {message_id!r} in their inbox",
        )  # fmt: skip
    if not message.survey:
        raise ApiError(
            409, "not_a_survey",
            f"message {message_id!r} asks no survey question (its send step has no `survey`)",
        )  # fmt: skip
    answer = SurveyAnswer(
        customer_id=customer_id, survey=message.survey, score=body.score, channel="in_app",
        comment=body.comment.strip(), journey=message.journey or "", step=message.step or "",
        message_id=message_id,
    )  # fmt: skip
    try:
        event = answer.event(state.clock.now())
    except InvalidScoreError as exc:
        raise ApiError(422, "invalid_score", str(exc)) from exc
    await publish_all(state, [event])
    return SurveyAnswerOut(event_id=event.event_id, survey=message.survey, score=body.score)


@router.get(
    "/{customer_id}/inbox/stream",
    name="inbox_stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}},
)
async def inbox_stream(
    customer_id: str,
    state: Annotated[AppState, Depends(app_state)],
    max_seconds: Annotated[
        float | None,
        Query(gt=0, description="close the stream after this long (the client reconnects)"),
    ] = None,
) -> StreamingResponse:
    """New messages as Server-Sent Events (`event: message`, `id`, JSON `data`).

    The stream opens with a `: subscribed` comment once it listens, so a client knows that
    every message added after it will arrive; a `: keep-alive` comment follows every
    `ORCHESTRATOR_INBOX_KEEPALIVE_S` so proxies keep the connection open.
    """
    # Pub/sub needs a connection of its own; a plain client works on Redis Cluster too,
    # since PUBLISH reaches every node's subscribers.
    listener = Redis.from_url(state.settings.redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    try:
        async with state.redis_call():
            await pubsub.subscribe(state.keys.inbox_channel(customer_id))
    except BaseException:
        await pubsub.reset()
        await listener.aclose()
        raise
    keepalive = state.settings.inbox_keepalive_s
    loop = asyncio.get_running_loop()
    deadline = None if max_seconds is None else loop.time() + max_seconds

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b": subscribed\n\n"
            while deadline is None or loop.time() < deadline:
                wait = keepalive if deadline is None else min(keepalive, deadline - loop.time())
                message = await pubsub.get_message(timeout=max(wait, 0.0))
                if message is None:
                    yield b": keep-alive\n\n"
                    continue
                data = bytes(message["data"])
                # `id` lets a client that reconnects tell what it has already shown.
                entry_id = str(jsonwire.loads(data).get("id", "")).encode()
                yield b"event: message\nid: " + entry_id + b"\ndata: " + data + b"\n\n"
        finally:
            # Each step on its own: one failing (the client left mid-way) must not leak the
            # connection the next one closes.
            with contextlib.suppress(Exception):
                await pubsub.reset()
            with contextlib.suppress(Exception):
                await listener.aclose(close_connection_pool=True)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
