"""Segment-compatible ingest: `POST /v1/track`, `/v1/identify`, `/v1/batch` (gzip too).

Answers as Segment does, so official SDKs work unchanged: 200 `{"success": true}`; 400 for
a malformed body or message (SDKs do not retry it); 429 with `Retry-After` when the process
sheds load and 503 while Kafka or Redis is away (they retry both). Valid messages of a
batch are published even when another one is malformed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security
from pydantic import BaseModel

from orchestrator import jsonwire
from orchestrator.api.access import authorize
from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.ingest import ingest_slot, publish
from orchestrator.api.limits import gunzip
from orchestrator.api.state import AppState, app_state
from orchestrator.control.segment import segment_event
from orchestrator.engine.events import Event
from orchestrator.errors import EventValidationError

__all__ = ["SegmentResult", "router"]

# As for /v1/events: the key first, then a slot (held while the body streams in).
router = APIRouter(
    prefix="/v1",
    tags=["segment"],
    dependencies=[Security(authorize), Depends(ingest_slot)],
    responses=error_responses({429: "Too many ingest requests at once: retry after Retry-After"}),
)


class SegmentResult(BaseModel):
    """Segment's answer to an accepted call."""

    success: bool


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    # The body is read raw (it may be gzip); this documents its JSON shape.
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_MESSAGE = {"type": "object", "description": "a Segment spec message (track or identify)"}
_BATCH = {
    "type": "object",
    "required": ["batch"],
    "properties": {"batch": {"type": "array", "items": _MESSAGE}},
}


async def _json(request: Request, state: AppState) -> Any:
    body = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        body = gunzip(body, state.settings.api_max_body_bytes)
    try:
        return jsonwire.loads(body)
    except jsonwire.JSONDecodeError as exc:
        raise ApiError(400, "bad_json", f"the body is not JSON ({exc})") from exc


async def _ingest(state: AppState, route: str, messages: list[Any], kind: str | None) -> None:
    events: list[tuple[int, Event]] = []
    rejected: dict[int, str] = {}
    now = state.clock.now()
    for index, message in enumerate(messages):
        try:
            event = segment_event(message, state.names, kind, now)
        except EventValidationError as exc:
            rejected[index] = str(exc)
            continue
        if event is not None:
            events.append((index, event))
    result = await publish(state, route, events, rejected)
    if result.rejected:
        shown = "; ".join(f"message {r.index}: {r.reason}" for r in result.rejected[:5])
        raise ApiError(
            400,
            "message_invalid",
            f"{len(result.rejected)} of {len(messages)} messages not accepted ({shown}); "
            "the others were",
        )


@router.post(
    "/track",
    name="segment_track",
    response_model=SegmentResult,
    openapi_extra=_body(_MESSAGE),
    summary="Segment track: an event",
)
async def segment_track(
    request: Request, state: Annotated[AppState, Depends(app_state)]
) -> SegmentResult:
    """A track call; its `event` name goes through the name map."""
    await _ingest(state, "/v1/track", [await _json(request, state)], "track")
    return SegmentResult(success=True)


@router.post(
    "/identify",
    name="segment_identify",
    response_model=SegmentResult,
    openapi_extra=_body(_MESSAGE),
    summary="Segment identify: traits become a profile.updated event",
)
async def segment_identify(
    request: Request, state: Annotated[AppState, Depends(app_state)]
) -> SegmentResult:
    """An identify call."""
    await _ingest(state, "/v1/identify", [await _json(request, state)], "identify")
    return SegmentResult(success=True)


@router.post(
    "/batch",
    name="segment_batch",
    response_model=SegmentResult,
    openapi_extra=_body(_BATCH),
    summary="Segment batch, as the SDKs send (gzip with Content-Encoding: gzip)",
)
async def segment_batch(
    request: Request, state: Annotated[AppState, Depends(app_state)]
) -> SegmentResult:
    """A batch of track and identify messages (others are accepted and ignored)."""
    payload = await _json(request, state)
    batch = payload.get("batch") if isinstance(payload, dict) else None
    if not isinstance(batch, list):
        raise ApiError(400, "bad_request", 'the body must be {"batch": [messages]}')
    await _ingest(state, "/v1/batch", batch, None)
    return SegmentResult(success=True)
