"""Webhooks in: Twilio's status callbacks and inbound messages, and one-click unsubscribe.

None of these routes takes an API key (providers and mailbox providers cannot send one);
each is verified by its sender's own scheme instead, and a bad or missing signature gets
403 `bad_signature` with nothing published:

- Twilio's `X-Twilio-Signature`, computed over the *public* URL (`ORCHESTRATOR_PUBLIC_URL` +
  path + query, the URL Twilio was given, since a proxy may sit in front) and the form.
- The unsubscribe link's own HMAC (`infra/unsubscribe.py`), made by the email connector.

Inbound keywords are answered with TwiML (`<Response><Message>...</Message></Response>`),
Twilio's documented way to reply: Twilio sends the reply itself, from the number written to,
so it needs no outbound message and no connector. Each inbound `MessageSid` is answered once
(a redelivered webhook gets an empty `<Response/>`, its events being idempotent anyway).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request, Response

from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.ingest import publish_all
from orchestrator.api.state import AppState, app_state
from orchestrator.control.inbound import (
    consent_event,
    keyword_of,
    message_of_callback,
    replied_event,
    status_event,
    survey_event,
    twiml,
    valid_twilio_signature,
)
from orchestrator.engine.events import CONSENT_UPDATED, Event
from orchestrator.infra.unsubscribe import UNSUBSCRIBE_PATH

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(
    tags=["webhooks"],
    responses=error_responses({403: "The provider's signature is missing or wrong"}),
)

# An answered inbound message is remembered this long (Twilio retries within minutes).
_SEEN_SECONDS = 24 * 3600


class _Xml(Response):
    media_type = "text/xml"


# The TwiML answer is documented beside the JSON errors (a route-wide XML response class
# would document the errors as XML too).
_TWIML: dict[int | str, dict[str, Any]] = {
    200: {"description": "TwiML", "content": {"text/xml": {"schema": {"type": "string"}}}}
}


async def _twilio_form(request: Request, state: AppState) -> dict[str, str]:
    """The form Twilio posted, once its signature is checked; else 403 `bad_signature`."""
    token = state.settings.twilio_auth_token
    if token is None:
        # Without the token no signature can be verified, so none is accepted.
        raise ApiError(
            403,
            "bad_signature",
            "no signature can be verified: set ORCHESTRATOR_TWILIO_AUTH_TOKEN",
        )
    body = (await request.body()).decode("utf-8", errors="replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    url = state.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("x-twilio-signature")
    if not valid_twilio_signature(token.get_secret_value(), url, form, signature):
        raise ApiError(
            403,
            "bad_signature",
            f"X-Twilio-Signature is missing or does not match {url} and the form: check "
            "ORCHESTRATOR_PUBLIC_URL and ORCHESTRATOR_TWILIO_AUTH_TOKEN",
        )
    return form


async def _count(state: AppState, counter: str) -> None:
    async with state.redis_call():
        await state.redis.hincrby(state.keys.inbound_stats(), counter, 1)


@router.post("/v1/webhooks/twilio/status", name="twilio_status", responses=_TWIML)
async def twilio_status(request: Request, state: Annotated[AppState, Depends(app_state)]) -> _Xml:
    """A Twilio status callback: `delivered` -> `message.delivered`, `failed` or
    `undelivered` -> `message.failed` (with `ErrorCode`); other statuses change nothing.

    The message is the one the callback URL names (signed with the form); a URL naming none
    (a message sent before URLs did) is looked up by `MessageSid` in the identity index."""
    form = await _twilio_form(request, state)
    sid = form.get("MessageSid", "")
    message = message_of_callback(request.query_params)
    if message is None and sid:
        async with state.redis_call():
            message = await state.identity.message_of(sid)
    if message is None:
        # Not one of ours, or older than the index keeps: counted and logged, not an error
        # (Twilio would retry an error forever for nothing).
        log.warning("twilio status for unknown MessageSid %r (%s)", sid, form.get("MessageStatus"))
        await _count(state, "unknown_message")
        return _Xml(twiml())
    event = status_event(message, form, state.clock.now())
    if event is not None:
        await publish_all(state, [event])
    return _Xml(twiml())


@router.post("/v1/webhooks/twilio/inbound", name="twilio_inbound", responses=_TWIML)
async def twilio_inbound(request: Request, state: Annotated[AppState, Depends(app_state)]) -> _Xml:
    """An inbound SMS or WhatsApp message: STOP/START/HELP keywords, or a reply (also a
    survey's answer when it answers a survey question with a score)."""
    form = await _twilio_form(request, state)
    sender, sid, text = form.get("From", ""), form.get("MessageSid", ""), form.get("Body", "")
    channel = "whatsapp" if sender.lower().startswith("whatsapp:") else "sms"
    async with state.redis_call():
        known = await state.identity.customer_of(sender) if sender else None
    if known is None:
        # Recorded as a counter and a log line, answered 200: Twilio must not retry it, and
        # we must not guess a customer.
        log.warning("inbound %s %s from an unknown address (%d chars)", channel, sid, len(text))
        await _count(state, "unknown_address")
        return _Xml(twiml())
    keyword = keyword_of(text)
    now = state.clock.now()
    settings = state.settings
    if keyword == "help":
        answer: str | None = settings.sms_help_text
    elif keyword is not None:
        await publish_all(state, [consent_event(known, channel, keyword, sid, now)])
        answer = settings.sms_stop_text if keyword == "stop" else settings.sms_start_text
    else:
        events = [replied_event(known, channel, text, sid, now)]
        # A reply to a survey question ("9 great service") is also the survey's answer.
        survey = survey_event(known, channel, text, sid, now)
        await publish_all(state, events if survey is None else [*events, survey])
        answer = None
    await _count(state, keyword or "reply")
    if answer is not None and sid:
        async with state.redis_call():
            first = await state.redis.set(
                state.keys.inbound_seen(sid), 1, nx=True, ex=_SEEN_SECONDS
            )
        if not first:  # a redelivered webhook: the confirmation went out already
            answer = None
    return _Xml(twiml(answer))


@router.post(UNSUBSCRIBE_PATH, name="unsubscribe_one_click")
async def unsubscribe_one_click(
    state: Annotated[AppState, Depends(app_state)],
    c: Annotated[str, Query(min_length=1, description="the customer")],
    ch: Annotated[str, Query(min_length=1, description="the channel")],
    s: Annotated[str, Query(min_length=1, description="the link's signature")],
    m: Annotated[str, Query(description="the message answered (unsigned)")] = "",
) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe: the signed link opts the customer out of the channel.

    The mailbox provider POSTs `List-Unsubscribe=One-Click` to the link from the email's
    `List-Unsubscribe` header; the body carries nothing else, so it is not read.
    """
    async with state.redis_call():
        await state.links.load(state.redis, state.keys)
    if not state.links.verify(c, ch, s):
        raise ApiError(403, "bad_signature", "this unsubscribe link is not one we signed")
    event = Event(
        event_id=f"{CONSENT_UPDATED}:unsubscribe:{c}:{ch}:{m}",
        customer_id=c,
        name=CONSENT_UPDATED,
        occurred_at=state.clock.now(),
        channel=ch,
        properties={"channel": ch, "status": "opted_out", "source": "one-click unsubscribe"},
    )
    await publish_all(state, [event])
    return {"status": "opted_out", "channel": ch}
