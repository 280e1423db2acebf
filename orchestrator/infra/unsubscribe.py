"""Signed one-click unsubscribe links (RFC 8058), made by the email connector, checked by the API.

An email's `List-Unsubscribe` header carries an HTTPS URL that the mailbox provider POSTs to
(body `List-Unsubscribe=One-Click`) when the customer clicks "unsubscribe". The URL must opt
out exactly that customer from exactly that channel, and nobody must be able to forge one for
another customer, so it carries an HMAC-SHA256 over (customer, channel):

    {ORCHESTRATOR_PUBLIC_URL}/v1/unsubscribe?c=<customer_id>&ch=<channel>&m=<message_id>&s=<sig>

`m` says which message was answered (for the interaction log); it is not signed, so it proves
nothing. `s` is base64url (no padding) of the MAC. The key is `ORCHESTRATOR_UNSUBSCRIBE_KEY`,
or else 32 random bytes created once in Redis (`SET NX`) and shared by connectors and the API,
as the engine key is (`origin.py`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

from pydantic import SecretStr

from orchestrator.errors import ConfigurationError
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient
from orchestrator.infra.sharedsecret import shared_secret

__all__ = ["UNSUBSCRIBE_PATH", "UnsubscribeLinks"]

UNSUBSCRIBE_PATH = "/v1/unsubscribe"
# Domain separation: these MACs are good for nothing but an unsubscribe link.
_CONTEXT = b"orchestrator unsubscribe v1\x00"


class UnsubscribeLinks:
    """Makes and checks unsubscribe links. `await load(redis, keys)` once before use."""

    def __init__(self, public_url: str, configured: SecretStr | None = None) -> None:
        self.public_url = public_url.rstrip("/")
        self._secret = None if configured is None else configured.get_secret_value().encode()

    async def load(self, redis: RedisClient, keys: RedisKeys) -> None:
        """Read the shared key from Redis, creating it if nobody has (no-op if configured)."""
        if self._secret is not None:
            return
        self._secret = await shared_secret(redis, keys.unsubscribe_key(), "unsubscribe key")

    def url(self, customer_id: str, channel: str, message_id: str) -> str:
        """The one-click URL that opts `customer_id` out of `channel`."""
        query = urlencode(
            {
                "c": customer_id,
                "ch": channel,
                "m": message_id,
                "s": self.signature(customer_id, channel),
            }
        )
        return f"{self.public_url}{UNSUBSCRIBE_PATH}?{query}"

    def signature(self, customer_id: str, channel: str) -> str:
        """base64url (unpadded) HMAC-SHA256 over the customer and the channel."""
        if self._secret is None:
            raise ConfigurationError(
                "the unsubscribe key is not loaded: call `await UnsubscribeLinks.load(redis, "
                "keys)` first, or set ORCHESTRATOR_UNSUBSCRIBE_KEY"
            )
        # Lengths first, so (customer, channel) pairs can never run into one another.
        message = b"".join(
            len(part).to_bytes(4, "big") + part for part in (customer_id.encode(), channel.encode())
        )
        mac = hmac.new(self._secret, _CONTEXT + message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def verify(self, customer_id: str, channel: str, signature: str) -> bool:
        """True if `signature` is this key's for (customer, channel); constant-time."""
        # As bytes: compare_digest refuses non-ASCII str, and a forged link may carry any.
        expected = self.signature(customer_id, channel).encode()
        return hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape"))
