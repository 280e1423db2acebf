"""`POST /v1/events`: our own event format, one event or a batch of up to 1,000."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Security

from orchestrator.api.access import authorize
from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.ingest import IngestResult, ingest_slot, publish
from orchestrator.api.state import AppState, app_state
from orchestrator.engine.events import Event, EventIn, parse_event
from orchestrator.errors import EventValidationError

__all__ = ["MAX_BATCH", "router"]

MAX_BATCH = 1000

# The key is checked before a slot is taken: an unknown caller never sheds a known one.
router = APIRouter(
    prefix="/v1",
    tags=["events"],
    dependencies=[Security(authorize), Depends(ingest_slot)],
    responses=error_responses({429: "Too many ingest requests at once: retry after Retry-After"}),
)

_BODY_SCHEMA = {
    "oneOf": [
        EventIn.model_json_schema(),
        {
            "type": "object",
            "required": ["events"],
            "properties": {
                "events": {"type": "array", "maxItems": MAX_BATCH, "items": {"type": "object"}}
            },
        },
    ]
}


@router.post(
    "/events",
    name="ingest_events",
    status_code=202,
    response_model=IngestResult,
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": _BODY_SCHEMA}}}},
    summary="Send one event or a batch; valid ones go through even when others are rejected",
)
async def ingest_events(
    payload: Annotated[dict[str, Any], Body()],
    state: Annotated[AppState, Depends(app_state)],
) -> IngestResult:
    """202 once Kafka acknowledged the accepted events; rejected ones are named by index."""
    items: Any = payload.get("events", [payload])
    if not isinstance(items, list):
        raise ApiError(400, "bad_request", "`events` must be a list of events")
    if len(items) > MAX_BATCH:
        raise ApiError(
            413,
            "too_many_events",
            f"{len(items)} events in one request, over {MAX_BATCH}: split the batch",
        )
    events: list[tuple[int, Event]] = []
    rejected: dict[int, str] = {}
    for index, item in enumerate(items):
        try:
            events.append((index, parse_event(item)))
        except EventValidationError as exc:
            rejected[index] = str(exc)
    return await publish(state, "/v1/events", events, rejected)
