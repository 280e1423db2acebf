"""Publishing what a request brought: shared by `/v1/events`, the Segment routes, the
webhooks and the survey answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated

from fastapi import Depends
from pydantic import BaseModel

from orchestrator.api.errors import ApiError
from orchestrator.api.state import AppState, app_state
from orchestrator.engine.events import Event

__all__ = ["IngestResult", "Rejection", "ingest_slot", "publish", "publish_all"]


class Rejection(BaseModel):
    """An event not accepted: its index in the request and why."""

    index: int
    reason: str


class IngestResult(BaseModel):
    """202 answer of `/v1/events`: events Kafka acknowledged, and those refused."""

    accepted: int
    rejected: list[Rejection]


async def ingest_slot(state: Annotated[AppState, Depends(app_state)]) -> AsyncIterator[None]:
    """Hold one of the process's ingest slots for the request (429 `overloaded` if none)."""
    with state.ingesting.slot():
        yield


async def publish(
    state: AppState, route: str, events: Sequence[tuple[int, Event]], rejected: dict[int, str]
) -> IngestResult:
    """Send the valid events and wait for Kafka's acknowledgement; count both kinds.

    An event id seen twice in one request is sent once (the worker dedupes across requests).
    Kafka away raises a 503; events sent before it may still arrive, which the worker's
    deduplication makes harmless when the client retries.
    """
    unique: dict[str, tuple[int, Event]] = {}
    for index, event in events:
        unique.setdefault(event.event_id, (index, event))
    batch = list(unique.values())
    if batch:
        async with state.kafka_call():
            publisher = await state.publisher()
            refused = await publisher.publish_acked([event for _, event in batch])
        for position, reason in refused.items():
            rejected[batch[position][0]] = reason
    accepted = len(events) - sum(1 for index, _ in events if index in rejected)
    state.metrics.ingested.labels(route).inc(accepted)
    state.metrics.rejected.labels(route).inc(len(rejected))
    return IngestResult(
        accepted=accepted,
        rejected=[Rejection(index=i, reason=r) for i, r in sorted(rejected.items())],
    )


async def publish_all(state: AppState, events: list[Event]) -> None:
    """Send events the API made itself (webhooks, survey answers), all or a 413.

    Bounded like any call touching Kafka and Redis; failures become typed 503s.
    """
    async with state.call():
        publisher = await state.publisher()
        refused = await publisher.publish_acked(events)
    if refused:
        raise ApiError(413, "event_too_large", "; ".join(refused.values()))
