"""The push channel: Firebase Cloud Messaging's HTTP v1 API over `httpx`.

`POST {ORCHESTRATOR_FCM_API_BASE}/v1/projects/{project}/messages:send` with
`Authorization: Bearer <OAuth2 access token>` (from the service account, `fcm_auth`) and
`{"message": {"token", "notification": {"title", "body"}, "data": {...}}}`. Success answers
`{"name": "projects/.../messages/..."}` (the provider id); errors answer
`{"error": {"code", "status", "details": [{"@type": "...FcmError", "errorCode"}]}}`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from connectors.base import Delivered, OutboundMessage, Outcome, Permanent, Retry
from connectors.fcm_auth import ServiceAccount, TokenError, TokenSource
from connectors.sms import retry_after
from orchestrator import jsonwire
from orchestrator.engine.events import PROFILE_UPDATED, Event
from orchestrator.errors import ConfigurationError
from orchestrator.infra.settings import Settings
from orchestrator.journey.dependencies import provider_of

__all__ = ["FcmConnector", "fcm_error_code", "token_removal"]

_GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
# The device token will never work again (the app was uninstalled, the token rotated) or is
# not a token at all: a verdict on this message, and on the address for UNREGISTERED.
_PERMANENT = frozenset({"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"})
# FCM's own trouble: retried and counted by the circuit.
_TROUBLE = frozenset({"UNAVAILABLE", "INTERNAL"})
# Rate limited (the project's or this device's quota): retried, but FCM is up.
_LIMITED = frozenset({"QUOTA_EXCEEDED"})

Publish = Callable[[list[Event]], Awaitable[Any]]


def fcm_error_code(body: Any, status: int) -> str:
    """The FcmError `errorCode` of an error body, else its `status`, else the HTTP status."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return str(status)
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("FcmError"):
            code = detail.get("errorCode")
            if code:
                return str(code)
    return str(error.get("status") or status)


def token_removal(message: OutboundMessage, at: float) -> Event:
    """The `profile.updated` that sets the customer's `push_token` to null after UNREGISTERED,
    so journeys stop sending push to a dead device (the send then fails `no_address`).

    Its id is derived from the message id: published again after a redelivery, it is
    applied once.
    """
    return Event(
        event_id=f"push.unregistered:{message.message_id}",
        customer_id=message.customer_id,
        name=PROFILE_UPDATED,
        occurred_at=at,
        channel="push",
        properties={"push_token": None},
    )


class FcmConnector:
    """The push channel through one Firebase project."""

    def __init__(self, settings: Settings, publish: Publish) -> None:
        missing = [
            name
            for name, value in (
                ("ORCHESTRATOR_FCM_PROJECT", settings.fcm_project),
                ("ORCHESTRATOR_FCM_SERVICE_ACCOUNT", settings.fcm_service_account),
            )
            if not value
        ]
        if missing or settings.fcm_service_account is None:
            raise ConfigurationError(f"the push channel needs {', '.join(missing)}")
        account = ServiceAccount.load(settings.fcm_service_account)
        self.channel: str = "push"
        self.publish = publish
        self.path = f"/v1/projects/{settings.fcm_project}/messages:send"
        self.client = httpx.AsyncClient(
            base_url=settings.fcm_api_base, timeout=settings.connector_timeout_s
        )
        token_url = settings.fcm_token_url or account.token_uri or _GOOGLE_TOKEN_URL
        self.tokens = TokenSource(account, token_url, self.client)

    def provider(self, message: OutboundMessage) -> str:
        """One Firebase project: one rate limit, one circuit."""
        return provider_of(self.channel, message.content)

    async def deliver(self, message: OutboundMessage) -> Outcome:
        """Send to the device token; classify FCM's answer (see `_classify`)."""
        if not message.to:
            return Permanent("no_address", "the customer's profile has no push_token")
        try:
            access = await self.tokens.token()
        except TokenError as exc:
            # Every message would fail alike: the provider's trouble, so the circuit opens.
            return Retry("oauth_token", str(exc))
        try:
            response = await self.client.post(
                self.path,
                json=self._body(message),
                headers={"Authorization": f"Bearer {access}"},
            )
        except httpx.TimeoutException as exc:
            return Retry("timeout", f"no answer from FCM: {type(exc).__name__}")
        except httpx.TransportError as exc:
            return Retry("unreachable", f"{type(exc).__name__}: {exc}")
        if response.status_code == 401:
            # Revoked or expired early: fetch a new token on the next try.
            self.tokens.forget(access)
        outcome = _classify(response)
        if isinstance(outcome, Permanent) and outcome.code == "UNREGISTERED":
            # Published before the receipt: a crash in between redelivers the message, and
            # the event's derived id keeps the second one from counting.
            await self.publish([token_removal(message, time.time())])
        return outcome

    def _body(self, message: OutboundMessage) -> dict[str, Any]:
        content = message.content
        # FCM's `data` is a map of strings to strings; ours tells the app which send it was.
        data = {
            str(k): v if isinstance(v, str) else jsonwire.dumps(v).decode()
            for k, v in (content.get("data") or {}).items()
        }
        data.update(message_id=message.message_id, journey=message.journey, step=message.step)
        return {
            "message": {
                "token": message.to,
                "notification": {
                    "title": str(content.get("title", "")),
                    "body": str(content.get("body", "")),
                },
                "data": data,
            }
        }

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def _classify(response: httpx.Response) -> Outcome:
    """200: delivered. UNREGISTERED, INVALID_ARGUMENT, SENDER_ID_MISMATCH: permanent.
    UNAVAILABLE, INTERNAL, 5xx, 401: retried and counted by the circuit; QUOTA_EXCEEDED and
    429: retried, not counted. `Retry-After` is honoured. Other 4xx: permanent."""
    try:
        body: Any = jsonwire.loads(response.content)
    except jsonwire.JSONDecodeError:
        body = {}
    status = response.status_code
    if status == 200 and isinstance(body, dict):
        return Delivered(str(body.get("name", "")))
    code = fcm_error_code(body, status)
    error = body.get("error") if isinstance(body, dict) else None
    reason = str(error.get("message", "")) if isinstance(error, dict) else response.reason_phrase
    after = retry_after(response.headers.get("Retry-After"))
    if code in _PERMANENT:
        return Permanent(code, reason)
    if code in _LIMITED or status == 429:
        return Retry(code, reason, after=after, provider_trouble=False)
    if code in _TROUBLE or status >= 500 or status == 401:
        return Retry(code, reason, after=after)
    return Permanent(code, reason)
