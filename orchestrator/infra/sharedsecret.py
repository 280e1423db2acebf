"""Secrets every process of a deployment shares through Redis when none is configured."""

from __future__ import annotations

import secrets

from orchestrator.errors import ConfigurationError
from orchestrator.infra.redisclient import RedisClient

__all__ = ["shared_secret"]

_GENERATED_BYTES = 32


async def shared_secret(redis: RedisClient, name: str, what: str) -> bytes:
    """The random secret stored at `name`, created by whichever process asks first.

    `SET NX` makes the first writer win, so every worker, operator and API process reads the
    same bytes; processes with Kafka access only (channel apps) never see them. `what` names
    the secret in the error.
    """
    await redis.set(name, secrets.token_bytes(_GENERATED_BYTES), nx=True)
    stored = await redis.get(name)
    if not stored:
        raise ConfigurationError(
            f"the {what} {name!r} vanished from Redis right after it was written; "
            "check that Redis is not evicting keys (use maxmemory-policy noeviction)"
        )
    return stored if isinstance(stored, bytes) else stored.encode()
