"""Proof that an `events` record was produced by the engine itself.

`timer.fired` and `journey.archived` share the `events` topic with channel apps' events, so
they must be ordered with each customer's other events. Anything that may write to `events`
could then fire a customer's timers or end their journeys. So the engine signs its own
events: an HMAC-SHA256 over the record's key and value, in the `orchestrator-origin` header,
with a key only workers and operators hold. The worker applies such an event only if the
signature checks out, and dead-letters it otherwise.

The key is `ORCHESTRATOR_ENGINE_KEY` if set. Otherwise it is 32 random bytes that the first
worker or operator command creates in Redis (`SET NX`, so all agree on one): workers and
operator commands already need Redis, and channel apps, which only publish to Kafka (or
through the API), never get it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from pydantic import SecretStr

from orchestrator.contracts.codec import Headers
from orchestrator.errors import ConfigurationError
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient
from orchestrator.infra.sharedsecret import shared_secret

__all__ = ["ORIGIN_HEADER", "EngineOrigin"]

ORIGIN_HEADER = "orchestrator-origin"
# Versioned so the scheme can change without old signatures being misread.
_SCHEME = b"v1="
# Domain separation: these MACs are good for nothing but an engine event record.
_CONTEXT = b"orchestrator engine event v1\x00"
_MIN_CONFIGURED_KEY_CHARS = 32


class EngineOrigin:
    """Signs the engine's own events and verifies the signature of those the worker reads.

    Build it with the configured key (or None), then `await load(redis, keys)` once before
    use: that creates or reads the shared key in Redis when none is configured.
    """

    def __init__(self, configured: SecretStr | None = None) -> None:
        self._secret: bytes | None = None
        if configured is not None:
            value = configured.get_secret_value()
            if len(value) < _MIN_CONFIGURED_KEY_CHARS:
                raise ConfigurationError(
                    f"ORCHESTRATOR_ENGINE_KEY has {len(value)} characters; use at least "
                    f"{_MIN_CONFIGURED_KEY_CHARS} random ones (e.g. `openssl rand -hex 32`), "
                    "the same for every worker and operator, or unset it to share one "
                    "through Redis"
                )
            self._secret = value.encode()

    @classmethod
    def from_secret(cls, secret: bytes) -> EngineOrigin:
        """An origin with this exact key (tests, tools)."""
        origin = cls()
        origin._secret = secret
        return origin

    async def load(self, redis: RedisClient, keys: RedisKeys) -> None:
        """Read the shared key from Redis, creating it if nobody has (no-op if configured)."""
        if self._secret is not None:
            return
        self._secret = await shared_secret(redis, keys.engine_key(), "engine key")

    def sign(self, key: bytes | None, value: bytes) -> list[tuple[str, bytes]]:
        """The headers that prove this record (key and value) comes from the engine."""
        return [(ORIGIN_HEADER, _SCHEME + self._mac(key, value).encode())]

    def verify(self, key: bytes | None, value: bytes, headers: Headers) -> str | None:
        """None if `headers` prove the engine produced this key and value, else why not."""
        found = _header(headers, ORIGIN_HEADER)
        if found is None:
            return f"no {ORIGIN_HEADER} header"
        expected = _SCHEME + self._mac(key, value).encode()
        if not hmac.compare_digest(found, expected):
            return f"the {ORIGIN_HEADER} signature does not match the record"
        return None

    def _mac(self, key: bytes | None, value: bytes) -> str:
        if self._secret is None:
            raise ConfigurationError(
                "the engine key is not loaded: call `await EngineOrigin.load(redis, keys)` "
                "before signing or verifying engine events"
            )
        # The key's length first, so (key, value) pairs can never run into one another.
        key_part = b"\xff\xff\xff\xff" if key is None else len(key).to_bytes(4, "big") + key
        return hmac.new(self._secret, _CONTEXT + key_part + value, hashlib.sha256).hexdigest()


def _header(headers: Headers, name: str) -> bytes | None:
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for header, value in pairs:
        if header == name:
            return value
    return None
