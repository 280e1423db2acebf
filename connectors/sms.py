"""The sms and whatsapp channels: Twilio's Messages API over `httpx`.

`POST {ORCHESTRATOR_TWILIO_API_BASE}/2010-04-01/Accounts/{AccountSid}/Messages.json`,
form-encoded `To`, `From`, `Body`, `StatusCallback`, HTTP basic auth (account SID, auth
token). 201 answers the message resource (its `sid` is the provider id); errors answer
`{"code", "message", "more_info", "status"}`.

`StatusCallback` names the message in its query (`control/inbound.py`,
`status_callback_url`): Twilio may call it before its 201 reaches us, when nothing here has
recorded the `sid` yet.

Before sending again after a try that may have reached Twilio (`find_sent`), the same URL
with `GET` lists the messages `To` the number `From` ours sent since that day (`DateSent>`),
a page at a time (`next_page_uri`): Twilio takes no idempotency key and its message resource
does not show `StatusCallback`, so a message is ours when its `To`, `From` and `Body` are and
Twilio created it after that try began.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from connectors.base import Delivered, OutboundMessage, Outcome, Permanent, Retry
from connectors.tracking import LinkTracker
from orchestrator import jsonwire
from orchestrator.control.inbound import status_callback_url
from orchestrator.errors import ConfigurationError
from orchestrator.infra.settings import Settings
from orchestrator.infra.tracking import TrackingTokens
from orchestrator.journey.dependencies import provider_of

__all__ = ["STATUS_CALLBACK_PATH", "TwilioConnector", "retry_after"]

# Where Twilio posts delivery status (served by `orchestrator api`, verified there).
STATUS_CALLBACK_PATH = "/v1/webhooks/twilio/status"
# Twilio answers 401 with error 20003 when the credentials are wrong: every message would
# fail the same way, so it is the provider's trouble (the circuit opens, messages wait for
# the fix) rather than a verdict on each message.
_AUTH_FAILED = 401
# Twilio's `date_created` has whole seconds and its clock is not Redis's: a message created
# this long before the try that may have created it still counts as that try's.
_CLOCK_SKEW = 5.0


def retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


class TwilioConnector:
    """One channel (`sms` or `whatsapp`) through one Twilio account."""

    def __init__(
        self,
        settings: Settings,
        channel: Literal["sms", "whatsapp"],
        tracking: TrackingTokens | None = None,
    ) -> None:
        """`tracking`: rewrite the body's links to tracked ones (SMS_LINK_TRACKING)."""
        sender = settings.twilio_from if channel == "sms" else settings.twilio_whatsapp_from
        missing = [
            name
            for name, value in (
                ("ORCHESTRATOR_TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
                ("ORCHESTRATOR_TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
                (
                    "ORCHESTRATOR_TWILIO_FROM"
                    if channel == "sms"
                    else "ORCHESTRATOR_TWILIO_WHATSAPP_FROM",
                    sender,
                ),
            )
            if not value
        ]
        if missing or settings.twilio_account_sid is None or settings.twilio_auth_token is None:
            raise ConfigurationError(f"the {channel} channel needs {', '.join(missing)}")
        self.channel: str = channel
        self.tracking = tracking
        self.sender = _whatsapp(sender or "") if channel == "whatsapp" else sender or ""
        self.path = f"/2010-04-01/Accounts/{settings.twilio_account_sid}/Messages.json"
        self.callback = settings.public_url.rstrip("/") + STATUS_CALLBACK_PATH
        self.client = httpx.AsyncClient(
            base_url=settings.twilio_api_base,
            auth=(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()),
            timeout=settings.connector_timeout_s,
        )

    def provider(self, message: OutboundMessage) -> str:
        """SMS and WhatsApp share the Twilio account, its rate limit and its circuit."""
        return provider_of(self.channel, message.content)

    async def deliver(self, message: OutboundMessage) -> Outcome:
        """Create the message; classify Twilio's answer (see `_classify`)."""
        if not message.to:
            return Permanent("no_address", "the customer's profile has no phone number")
        try:
            response = await self.client.post(self.path, data=self._form(message, message.to))
        except httpx.TimeoutException as exc:
            # Twilio may have created the message anyway: the next try asks it first
            # (`find_sent`); not retrying would lose the messages it did not create.
            return Retry("timeout", f"no answer from Twilio: {type(exc).__name__}", maybe_sent=True)
        except httpx.ConnectError as exc:
            return Retry("unreachable", f"{type(exc).__name__}: {exc}")
        except httpx.TransportError as exc:
            # The request may have gone out before the connection broke.
            return Retry("unreachable", f"{type(exc).__name__}: {exc}", maybe_sent=True)
        return _classify(response)

    async def find_sent(self, message: OutboundMessage, since: float) -> Outcome | None:
        """The message Twilio created for `message` since `since` (epoch seconds), from its
        list of messages (see the module's docstring); a failed lookup is a `Retry`."""
        if not message.to:
            return None
        form = self._form(message, message.to)
        after = since - _CLOCK_SKEW
        day = datetime.fromtimestamp(after, UTC).date().isoformat()
        url: str | None = self.path
        params: dict[str, str] | None = {"To": form["To"], "From": form["From"], "DateSent>": day}
        while url is not None:
            try:
                response = await self.client.get(url, params=params)
            except httpx.TransportError as exc:
                return Retry("lookup_failed", f"{type(exc).__name__}: {exc}", maybe_sent=True)
            if response.status_code != 200:
                # Whatever Twilio answered, it did not say whether it has the message.
                answer = _classify(response)
                if isinstance(answer, Retry):
                    return replace(answer, code=f"lookup_{answer.code}", maybe_sent=True)
                return Retry(f"lookup_{response.status_code}", response.text[:200], maybe_sent=True)
            page = jsonwire.loads(response.content)
            for resource in page.get("messages", []):
                if _is_ours(resource, form, after):
                    return Delivered(str(resource["sid"]), reconciled=True)
            url, params = page.get("next_page_uri"), None  # it carries the query
        return None

    def _form(self, message: OutboundMessage, number: str) -> dict[str, str]:
        """The create request's form, the same on every try (links tracked the same way)."""
        to = _whatsapp(number) if self.channel == "whatsapp" else number
        body = str(message.content.get("body", ""))
        if self.tracking is not None:
            body = LinkTracker(self.tracking, message).text(body)
        return {
            "To": to,
            "From": self.sender,
            "Body": body,
            "StatusCallback": status_callback_url(self.callback, message),
        }

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def _classify(response: httpx.Response) -> Outcome:
    """201: delivered. 429, 5xx, 401: retried (after `Retry-After`). Other 4xx (21211 invalid
    number, 21610 unsubscribed recipient, 21614 not a mobile...): permanent."""
    try:
        body = jsonwire.loads(response.content)
    except jsonwire.JSONDecodeError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    if status in (200, 201):
        return Delivered(str(body.get("sid", "")))
    code = str(body.get("code") or status)
    reason = str(body.get("message") or response.reason_phrase)
    after = retry_after(response.headers.get("Retry-After"))
    if status == 429:
        return Retry(code, reason, after=after, provider_trouble=False)
    if status >= 500 or status == _AUTH_FAILED:
        return Retry(code, reason, after=after)
    return Permanent(code, reason)


def _is_ours(resource: dict[str, Any], form: dict[str, str], after: float) -> bool:
    """True if Twilio's message resource is the one `form` created since `after`."""
    created = resource.get("date_created")
    return (
        resource.get("to") == form["To"]
        and resource.get("from") == form["From"]
        and resource.get("body") == form["Body"]
        and str(resource.get("direction", "")).startswith("outbound")
        and isinstance(created, str)
        and parsedate_to_datetime(created).timestamp() >= after
    )


def _whatsapp(number: str) -> str:
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"
