"""Tracked links and the email open pixel (`/v1/t/c/<token>`, `/v1/t/o/<token>`).

No API key: mail clients and browsers call these. The token is signed by the connector that
wrote it into the message (`infra/tracking.py`), so only URLs we signed are followed (never
an open redirect) and nobody can click or open for someone else: a forged token gets 403
`bad_signature`, a malformed one 404 `unknown_link`, and nothing is published.

A click publishes `message.clicked` and answers 302 to the link's URL; an open publishes
`message.opened` and answers a 1x1 transparent GIF that no cache may keep. When Kafka does
not take the event, the customer still gets the page (or the pixel): the receipt is lost and
logged, the click is not.
"""

from __future__ import annotations

import base64
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from fastapi.responses import RedirectResponse

from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.state import AppState, app_state
from orchestrator.control.tracking import clicked_event, opened_event
from orchestrator.engine.events import Event
from orchestrator.errors import DependencyUnavailableError
from orchestrator.infra.signedtoken import BadTokenError
from orchestrator.infra.tracking import CLICK_PATH, OPEN_PATH, Tracked

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(
    tags=["tracking"],
    responses=error_responses({403: "The token is not one we signed", 404: "Not a tracking token"}),
)

# A 1x1 transparent GIF (42 bytes).
_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_CACHE = {
    "Cache-Control": "no-cache, no-store, must-revalidate, private",
    "Pragma": "no-cache",
    "Expires": "0",
}
_Token = Annotated[str, Path(min_length=1, max_length=8192, description="the signed token")]


async def _read(state: AppState, token: str, click: bool) -> Tracked:
    async with state.redis_call():
        await state.tracking.load(state.redis, state.keys)
    try:
        tracked = state.tracking.read(token)
    except BadTokenError as exc:
        if exc.forged:
            raise ApiError(403, "bad_signature", str(exc)) from exc
        raise ApiError(404, "unknown_link", f"{exc}: check the link is whole") from exc
    if click != (tracked.url is not None):
        # A pixel's token on the click route or the other way round: not a link we made.
        raise ApiError(404, "unknown_link", "this token is not a tracked link of this kind")
    return tracked


async def _publish(state: AppState, event: Event) -> None:
    try:
        async with state.call():
            publisher = await state.publisher()
            refused = await publisher.publish_acked([event])
    except DependencyUnavailableError as exc:
        log.warning("%s not published, answered anyway: %s", event.event_id, exc)
        return
    if refused:
        log.warning("%s refused by Kafka: %s", event.event_id, "; ".join(refused.values()))


@router.get(
    f"{CLICK_PATH}/{{token}}",
    name="track_click",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "redirect to the link's URL"}},
)
async def track_click(
    token: _Token, state: Annotated[AppState, Depends(app_state)]
) -> RedirectResponse:
    """A tracked link: `message.clicked`, then 302 to the URL the token signs."""
    tracked = await _read(state, token, click=True)
    await _publish(state, clicked_event(tracked, state.clock.now()))
    # The URL was ours to sign, so it is exactly what the template said.
    return RedirectResponse(
        str(tracked.url), status_code=302, headers={**_NO_CACHE, "Referrer-Policy": "no-referrer"}
    )


@router.get(
    f"{OPEN_PATH}/{{token}}",
    name="track_open",
    response_class=Response,
    responses={200: {"description": "a 1x1 transparent GIF", "content": {"image/gif": {}}}},
)
async def track_open(token: _Token, state: Annotated[AppState, Depends(app_state)]) -> Response:
    """The open pixel: `message.opened`, then a 1x1 transparent GIF (never cached)."""
    tracked = await _read(state, token, click=False)
    await _publish(state, opened_event(tracked, state.clock.now()))
    return Response(_PIXEL, media_type="image/gif", headers=_NO_CACHE)
