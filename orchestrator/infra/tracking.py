"""Signed tracking tokens: the email open pixel and tracked links, made by the connectors,
checked by the API.

A tracked link is `{ORCHESTRATOR_PUBLIC_URL}/v1/t/c/<token>` and the open pixel
`{ORCHESTRATOR_PUBLIC_URL}/v1/t/o/<token>`. The token carries everything the API needs to
publish the receipt (message, customer, journey, step, channel; for a link its index and the
original URL) and an HMAC-SHA256 over it, so the redirect follows only URLs we signed: it can
never be an open redirect, and nobody can click or open on another customer's behalf.

    token = base64url(JSON claims) "." base64url(HMAC-SHA256(key, context + JSON claims))

(base64url without padding; `infra/signedtoken.py`: only its canonical spelling opens). The
key is `ORCHESTRATOR_TRACKING_KEY`, or else 32 random bytes created once in Redis and shared by
connectors and the API (`sharedsecret.py`), as the unsubscribe key is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from orchestrator import jsonwire
from orchestrator.errors import ConfigurationError
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient
from orchestrator.infra.sharedsecret import shared_secret
from orchestrator.infra.signedtoken import BadTokenError, open_token, seal

__all__ = [
    "CLICK_PATH",
    "OPEN_PATH",
    "Tracked",
    "TrackingTokens",
]

CLICK_PATH = "/v1/t/c"
OPEN_PATH = "/v1/t/o"
# Domain separation: these MACs are good for nothing but a tracking token.
_CONTEXT = b"orchestrator tracking v1\x00"


@dataclass(frozen=True, slots=True)
class Tracked:
    """What a token says: the message, and for a click the link's index and URL."""

    message_id: str
    customer_id: str
    journey: str
    step: str
    channel: str
    instance_id: str = ""
    link: int | None = None
    url: str | None = None


class TrackingTokens:
    """Makes and reads tracking tokens. `await load(redis, keys)` once before use."""

    def __init__(self, public_url: str, configured: SecretStr | None = None) -> None:
        self.public_url = public_url.rstrip("/")
        self._secret = None if configured is None else configured.get_secret_value().encode()

    async def load(self, redis: RedisClient, keys: RedisKeys) -> None:
        """Read the shared key from Redis, creating it if nobody has (no-op if configured)."""
        if self._secret is None:
            self._secret = await shared_secret(redis, keys.tracking_key(), "tracking key")

    def click_url(self, tracked: Tracked) -> str:
        """The tracked link that redirects to `tracked.url`."""
        return f"{self.public_url}{CLICK_PATH}/{self.token(tracked)}"

    def open_url(self, tracked: Tracked) -> str:
        """The open pixel's URL."""
        return f"{self.public_url}{OPEN_PATH}/{self.token(tracked)}"

    def token(self, tracked: Tracked) -> str:
        """The signed token of `tracked` (short keys: it travels in every link)."""
        claims: dict[str, Any] = {
            "m": tracked.message_id,
            "c": tracked.customer_id,
            "j": tracked.journey,
            "s": tracked.step,
            "ch": tracked.channel,
            "n": tracked.instance_id,
        }
        if tracked.link is not None:
            claims.update(i=tracked.link, u=tracked.url)
        return seal(self._key(), _CONTEXT, jsonwire.dumps(claims))

    def read(self, token: str) -> Tracked:
        """The claims of a token we signed; raises `BadTokenError` otherwise."""
        payload = open_token(self._key(), _CONTEXT, token)
        try:
            claims = jsonwire.loads(payload)
            link = claims.get("i")
            return Tracked(
                message_id=str(claims["m"]),
                customer_id=str(claims["c"]),
                journey=str(claims["j"]),
                step=str(claims["s"]),
                channel=str(claims["ch"]),
                instance_id=str(claims.get("n", "")),
                link=None if link is None else int(link),
                url=None if link is None else str(claims["u"]),
            )
        except (jsonwire.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            # Signed by us yet unreadable: a token of a future version, not a forgery.
            raise BadTokenError(f"unreadable tracking token: {exc}", forged=False) from exc

    def _key(self) -> bytes:
        if self._secret is None:
            raise ConfigurationError(
                "the tracking key is not loaded: call `await TrackingTokens.load(redis, keys)` "
                "first, or set ORCHESTRATOR_TRACKING_KEY"
            )
        return self._secret
