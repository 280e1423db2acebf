"""VERP bounce addresses: each email's envelope sender names its message, signed.

With `ORCHESTRATOR_BOUNCE_DOMAIN` set, an email's `MAIL FROM` (the address a delivery status
notification goes back to) is

    b+<message_id>.<mac>@<bounce domain>

where `mac` is the first 12 bytes of HMAC-SHA256(key, context + message id), in lower-case
base32 without padding (20 characters). A bounce then says which message it is about without
parsing anything the remote server wrote, and nobody can make a bounce for a message we did not
send to them: a message's address is seen only by the servers that carry it and its reader.

Lower case throughout: some servers lower-case the addresses they answer to (the local part is
case-sensitive only in theory). The whole local part stays under 64 characters (RFC 5321),
so only message ids of up to 40 lower-case letters, digits, `-` and `_` get one (the engine's
are 32 hex digits); another keeps the plain sender. The key is the tracking key
(`ORCHESTRATOR_TRACKING_KEY`, or the random one shared in Redis), under its own context: these
MACs are good for nothing but a bounce address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from pydantic import SecretStr

from orchestrator.errors import ConfigurationError, OrchestratorError
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient
from orchestrator.infra.sharedsecret import shared_secret

__all__ = ["BadBounceAddressError", "BounceAddresses"]

_CONTEXT = b"orchestrator bounce address v1\x00"
_MAC_BYTES = 12
_PREFIX = "b+"
_MESSAGE_ID = re.compile(r"[a-z0-9_-]{1,40}")
_LOCAL = re.compile(r"b\+([a-z0-9_-]{1,40})\.([a-z2-7]{20})")


class BadBounceAddressError(OrchestratorError):
    """A recipient that is no bounce address of ours: `forged` (a wrong MAC) or malformed."""

    def __init__(self, message: str, forged: bool) -> None:
        super().__init__(message)
        self.forged = forged


class BounceAddresses:
    """Makes and reads bounce addresses on one domain. `await load(redis, keys)` once."""

    def __init__(self, domain: str, configured: SecretStr | None = None) -> None:
        self.domain = domain.strip().lower()
        self._secret = None if configured is None else configured.get_secret_value().encode()

    async def load(self, redis: RedisClient, keys: RedisKeys) -> None:
        """Read the shared tracking key from Redis, creating it if nobody has (no-op if
        configured)."""
        if self._secret is None:
            self._secret = await shared_secret(redis, keys.tracking_key(), "tracking key")

    def address(self, message_id: str) -> str | None:
        """The envelope sender of `message_id`'s email; None for an id that cannot be one."""
        if not _MESSAGE_ID.fullmatch(message_id):
            return None
        return f"{_PREFIX}{message_id}.{self._mac(message_id)}@{self.domain}"

    def is_ours(self, recipient: str) -> bool:
        """Whether `recipient` is on our domain with our prefix (its MAC not checked yet)."""
        local, _, domain = recipient.strip().strip("<>").rpartition("@")
        return domain.lower() == self.domain and local.lower().startswith(_PREFIX)

    def message_of(self, recipient: str) -> str:
        """The message id a bounce address we made names; raises `BadBounceAddressError`."""
        local, _, domain = recipient.strip().strip("<>").lower().rpartition("@")
        found = _LOCAL.fullmatch(local)
        if domain != self.domain or found is None:
            raise BadBounceAddressError(f"{recipient!r} is not a bounce address", forged=False)
        message_id, mac = found.groups()
        if not hmac.compare_digest(self._mac(message_id), mac):
            raise BadBounceAddressError(
                f"{recipient!r} is not a bounce address we signed", forged=True
            )
        return message_id

    def _mac(self, message_id: str) -> str:
        if self._secret is None:
            raise ConfigurationError(
                "the bounce address key is not loaded: call `await BounceAddresses.load(redis, "
                "keys)` first, or set ORCHESTRATOR_TRACKING_KEY"
            )
        digest = hmac.new(self._secret, _CONTEXT + message_id.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest[:_MAC_BYTES]).decode().rstrip("=").lower()
