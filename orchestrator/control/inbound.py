"""What providers tell us, as events: Twilio's signature, status callbacks and inbound texts.

The API's webhook routes (`orchestrator/api/webhooks.py`) are thin: they check the signature
here, then turn the provider's form into events with the functions below. Event ids derive
from the provider's ids (`MessageSid`), so a webhook Twilio delivers twice becomes the same
event twice, which the journey workers apply once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

from orchestrator.contracts.outbound import OutboundMessage
from orchestrator.contracts.surveys import SurveyAnswer, reply_answer
from orchestrator.control.identity import KnownAddress, SentMessage
from orchestrator.engine.events import CONSENT_UPDATED, Event

__all__ = [
    "MESSAGE_DELIVERED",
    "MESSAGE_FAILED",
    "MESSAGE_REPLIED",
    "Keyword",
    "consent_event",
    "keyword_of",
    "message_of_callback",
    "replied_event",
    "status_callback_url",
    "status_event",
    "survey_event",
    "twilio_signature",
    "twiml",
    "valid_twilio_signature",
]

MESSAGE_DELIVERED = "message.delivered"
MESSAGE_FAILED = "message.failed"
MESSAGE_REPLIED = "message.replied"

# Twilio's documented opt-out and opt-in keywords (matched on the whole trimmed body, any case).
_STOP = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
_START = frozenset({"START", "UNSTOP"})
_HELP = frozenset({"HELP"})
# Final statuses only: queued, sending, sent and accepted are steps on the way.
_DELIVERED = frozenset({"delivered", "read"})
_FAILED = frozenset({"failed", "undelivered"})

Keyword = Literal["stop", "start", "help"]


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """base64(HMAC-SHA1(token, url + name+value of each param sorted by name)), as Twilio's
    helper library computes `X-Twilio-Signature`."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    mac = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def valid_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """True if `signature` is Twilio's for this URL and form; constant-time."""
    if not signature:
        return False
    # As bytes: compare_digest refuses non-ASCII str, and a forged header may carry any.
    expected = twilio_signature(auth_token, url, params).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape"))


# What a status callback's URL says about its message (`SentMessage`'s fields, survey aside).
_CALLBACK_FIELDS = ("message_id", "customer_id", "journey", "step", "instance_id", "channel")
# Characters a query value may hold as they are (RFC 3986 `pchar`, `/`, `?`; not `&=+`).
_QUERY_SAFE = "!$'()*,;:@/?"


def status_callback_url(base: str, message: OutboundMessage) -> str:
    """`base` (the public status callback URL) with the message in its query.

    The query is in the normal form of RFC 3986: only what a query value cannot hold is
    percent-encoded (`&`, `=`, `+`, `#`, `%`, spaces, non-ASCII), nothing a URL normaliser
    would decode again (HTTP clients such as aiohttp's do), so the URL reaches us byte for
    byte as Twilio signed it.
    """
    values = {name: str(getattr(message, name)) for name in _CALLBACK_FIELDS}
    return f"{base}?{urlencode(values, quote_via=quote, safe=_QUERY_SAFE)}"


def message_of_callback(query: Mapping[str, str]) -> SentMessage | None:
    """The message a status callback's (signed) URL names, None for a URL without one (a
    message sent before callbacks carried it: the identity index knows those)."""
    if not query.get("message_id") or not query.get("customer_id"):
        return None
    return SentMessage(**{name: query.get(name, "") for name in _CALLBACK_FIELDS})


def keyword_of(body: str) -> Keyword | None:
    """`stop`, `start` or `help` when the whole message is one of Twilio's keywords."""
    word = body.strip().upper()
    if word in _STOP:
        return "stop"
    if word in _START:
        return "start"
    if word in _HELP:
        return "help"
    return None


def _correlation(message: SentMessage) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "journey": message.journey,
        "step": message.step,
        "instance_id": message.instance_id,
    }


def status_event(message: SentMessage, form: Mapping[str, str], at: float) -> Event | None:
    """`message.delivered` or `message.failed` for a final status; None for the others."""
    status = form.get("MessageStatus", "")
    if status in _DELIVERED:
        name = MESSAGE_DELIVERED
    elif status in _FAILED:
        name = MESSAGE_FAILED
    else:
        return None
    properties: dict[str, Any] = {
        **_correlation(message),
        "channel": message.channel,
        "provider_id": form.get("MessageSid", ""),
        "status": status,
    }
    if name == MESSAGE_FAILED:
        properties.update(error_code=form.get("ErrorCode", ""), reason=f"Twilio: {status}")
    return Event(
        event_id=f"{name}:{message.message_id}",
        customer_id=message.customer_id,
        name=name,
        occurred_at=at,
        channel=message.channel,
        properties=properties,
    )


def consent_event(
    known: KnownAddress, channel: str, keyword: Keyword, sid: str, at: float
) -> Event:
    """`consent.updated` opting the customer out of (STOP) or back into (START) `channel`."""
    status = "opted_out" if keyword == "stop" else "opted_in"
    return Event(
        event_id=f"{CONSENT_UPDATED}:{sid}",
        customer_id=known.customer_id,
        name=CONSENT_UPDATED,
        occurred_at=at,
        channel=channel,
        properties={"channel": channel, "status": status, "source": f"inbound {keyword}"},
    )


def replied_event(known: KnownAddress, channel: str, text: str, sid: str, at: float) -> Event:
    """`message.replied` with the text, correlated with the last message to that address."""
    properties: dict[str, Any] = {"text": text, "channel": channel, "provider_id": sid}
    if known.last is not None:
        properties.update(_correlation(known.last))
    return Event(
        event_id=f"{MESSAGE_REPLIED}:{sid}",
        customer_id=known.customer_id,
        name=MESSAGE_REPLIED,
        occurred_at=at,
        channel=channel,
        properties=properties,
    )


def survey_event(known: KnownAddress, channel: str, text: str, sid: str, at: float) -> Event | None:
    """`survey.answered` when the last message to that address asks a survey and the reply
    starts with a score on its scale ("9", "9 great service", "10!"); the rest is the
    comment. None otherwise (the reply is then only `message.replied`)."""
    last = known.last
    if last is None or not last.survey:
        return None
    parsed = reply_answer(last.survey, text)
    if parsed is None:
        return None
    score, comment = parsed
    answer = SurveyAnswer(
        customer_id=known.customer_id,
        survey=last.survey,
        score=score,
        channel=channel,
        comment=comment,
        journey=last.journey,
        step=last.step,
        message_id=last.message_id,
    )
    return answer.event(at, sid)


def twiml(message: str | None = None) -> str:
    """A TwiML answer: `<Response/>`, or one `<Message>` Twilio sends back to the sender."""
    if message is None:
        return '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Message>{escape(message)}</Message></Response>"
    )
