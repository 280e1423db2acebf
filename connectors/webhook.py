"""The webhook channel: a JSON POST signed per the Standard Webhooks specification.

Headers: `webhook-id` (the message id: the same on every try, so a receiver dedupes on it),
`webhook-timestamp` (epoch seconds), `webhook-signature: v1,<base64 HMAC-SHA256>` over
`{id}.{timestamp}.{body}` with the secret `ORCHESTRATOR_WEBHOOK_SECRET` (`whsec_<base64>`,
the key being the base64-decoded part), which the published `standardwebhooks` libraries
verify. The body is the template's `payload`, posted to its `url`, if `destinations.py`
allows that URL (the allow-list, else public addresses only).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import time
from collections import OrderedDict

import httpx

from connectors.base import Delivered, OutboundMessage, Outcome, Permanent, Retry
from connectors.destinations import DestinationError, Destinations
from connectors.sms import retry_after
from orchestrator import jsonwire
from orchestrator.errors import ConfigurationError
from orchestrator.infra.settings import Settings
from orchestrator.journey.dependencies import provider_of

__all__ = ["WebhookConnector", "sign"]

_SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
# Receivers' connection pools kept at once (the least recently used one is closed).
_POOLS = 64


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one request."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class WebhookConnector:
    """Posts each message's payload to its URL; every destination host is its own provider."""

    channel = "webhook"

    def __init__(self, settings: Settings) -> None:
        secret = settings.webhook_secret
        if secret is None:
            raise ConfigurationError(
                "the webhook channel needs ORCHESTRATOR_WEBHOOK_SECRET (whsec_<base64 of 24 to "
                "64 random bytes>, shared with the receivers)"
            )
        try:
            self.key = base64.b64decode(
                secret.get_secret_value().removeprefix(_SECRET_PREFIX), validate=True
            )
        except binascii.Error:
            raise ConfigurationError(
                "ORCHESTRATOR_WEBHOOK_SECRET is not whsec_ followed by base64"
            ) from None
        self.destinations = Destinations(settings.webhook_allowed_hosts)
        self.timeout = settings.connector_timeout_s
        # One pool per receiver's host: requests go to the checked address, and a TLS
        # connection verified for one host must never carry another host's request.
        self.pools: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def provider(self, message: OutboundMessage) -> str:
        """`webhook:<host>`: one receiver's trouble never holds up another's."""
        return provider_of(self.channel, message.content)

    async def deliver(self, message: OutboundMessage) -> Outcome:
        """2xx: delivered. 408, 429, 5xx, timeouts: retried. Other answers: permanent."""
        url = str(message.content.get("url", ""))
        try:
            destination = await self.destinations.check(url)
        except DestinationError as refused:
            if refused.permanent:
                return Permanent(refused.code, refused.reason)
            return Retry(refused.code, refused.reason)
        body = jsonwire.dumps(message.content.get("payload"))
        timestamp = int(time.time())
        headers = {
            **destination.headers,
            "content-type": "application/json",
            "webhook-id": message.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.key, message.message_id, timestamp, body),
        }
        try:
            response = await self._pool(destination.headers["host"]).post(
                destination.url, content=body, headers=headers, extensions=destination.extensions
            )
        except httpx.TimeoutException as exc:
            return Retry("timeout", f"no answer from {url}: {type(exc).__name__}")
        except httpx.TransportError as exc:
            return Retry("unreachable", f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return Delivered(f"{status}")
        after = retry_after(response.headers.get("Retry-After"))
        if status == 429:
            return Retry("429", response.reason_phrase, after=after, provider_trouble=False)
        if status >= 500 or status == 408:
            return Retry(str(status), response.reason_phrase, after=after)
        return Permanent(str(status), response.reason_phrase)

    def _pool(self, host: str) -> httpx.AsyncClient:
        pool = self.pools.pop(host, None)
        if pool is None:
            # Redirects are failures under Standard Webhooks: a receiver moved is a config
            # change (and following one would skip the destination check).
            pool = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
            if len(self.pools) >= _POOLS:
                _, oldest = self.pools.popitem(last=False)
                closing = asyncio.create_task(oldest.aclose())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
        self.pools[host] = pool
        return pool

    async def aclose(self) -> None:
        """Close the connection pools."""
        await asyncio.gather(*(pool.aclose() for pool in self.pools.values()), *self._closing)
