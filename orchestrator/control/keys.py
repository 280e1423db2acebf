"""API keys: created, listed, revoked and checked; only a hash of each secret is stored.

A secret is `ok_<key id>_<43 random characters>` (256 bits from `secrets`). Redis keeps,
per key id, the secret's sha256 (enough for a high-entropy secret: no slow hash needed)
with the key's name and role. Checking a secret reads its key id's record and compares
digests in constant time. Any API process can check any key: nothing lives in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from orchestrator import jsonwire
from orchestrator.errors import OrchestratorError
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient

__all__ = [
    "GRANTS",
    "ROLES",
    "ApiKey",
    "Grant",
    "InvalidRoleError",
    "KeyStore",
    "Role",
    "UnknownKeyError",
]

Role = Literal["publisher", "operator", "auditor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
# Extra rights a key may carry beside its role. `pii`: an operator sees personal fields
# unmasked (auditors and admins always do).
Grant = Literal["pii"]
GRANTS: tuple[Grant, ...] = get_args(Grant)

_PREFIX = "ok_"
_ID_LENGTH = 12


class UnknownKeyError(OrchestratorError):
    """No key has this id."""


class InvalidRoleError(OrchestratorError):
    """The role is not one of ROLES, or a grant not one of GRANTS."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored (without the secret's digest) and shown in `keys list`."""

    key_id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None = None
    grants: tuple[Grant, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        wire = asdict(self)
        wire["grants"] = list(self.grants)
        return wire


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key_id(secret: str) -> str | None:
    """The key id embedded in a well-formed secret, else None."""
    if not secret.startswith(_PREFIX) or len(secret) < len(_PREFIX) + _ID_LENGTH + 2:
        return None
    key_id = secret[len(_PREFIX) : len(_PREFIX) + _ID_LENGTH]
    if secret[len(_PREFIX) + _ID_LENGTH] != "_":
        return None
    return key_id


class KeyStore:
    """The keys in one Redis hash (`RedisKeys.api_keys`), by key id."""

    def __init__(self, redis: RedisClient, keys: RedisKeys) -> None:
        self.redis = redis
        self.hash = keys.api_keys()

    async def create(
        self, role: str, name: str, at: str, grants: Sequence[str] = ()
    ) -> tuple[ApiKey, str]:
        """A new key and its secret (returned once, never stored)."""
        if role not in ROLES:
            raise InvalidRoleError(f"role {role!r} is unknown: use one of {', '.join(ROLES)}")
        unknown = [g for g in grants if g not in GRANTS]
        if unknown:
            raise InvalidRoleError(
                f"grant {unknown[0]!r} is unknown: use one of {', '.join(GRANTS)}"
            )
        key_id = secrets.token_hex(_ID_LENGTH // 2)
        secret = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        chosen = tuple(g for g in GRANTS if g in grants)
        key = ApiKey(key_id, name, role, at, None, chosen)
        record = {**key.to_wire(), "sha256": _digest(secret)}
        await self.redis.hset(self.hash, key_id, jsonwire.dumps(record))
        return key, secret

    async def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        raw = await self.redis.hgetall(self.hash)
        keys = [_from_record(jsonwire.loads(value)) for value in raw.values()]
        return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    async def revoke(self, key_id: str, at: str) -> ApiKey:
        """Mark a key revoked (kept for the record); revoking twice keeps the first time."""
        raw = await self.redis.hget(self.hash, key_id)
        if raw is None:
            raise UnknownKeyError(
                f"no API key has id {key_id!r}: `orchestrator keys list` shows the ids"
            )
        record = jsonwire.loads(raw)
        if record.get("revoked_at") is None:
            record["revoked_at"] = at
            await self.redis.hset(self.hash, key_id, jsonwire.dumps(record))
        return _from_record(record)

    async def authenticate(self, secret: str) -> ApiKey | None:
        """The live key this secret belongs to; None when unknown, wrong or revoked."""
        key_id = _key_id(secret)
        if key_id is None:
            return None
        raw = await self.redis.hget(self.hash, key_id)
        if raw is None:
            return None
        record = jsonwire.loads(raw)
        if not hmac.compare_digest(record["sha256"], _digest(secret)):
            return None
        key = _from_record(record)
        return None if key.revoked_at is not None else key


def _from_record(record: dict[str, Any]) -> ApiKey:
    return ApiKey(
        record["key_id"],
        record["name"],
        record["role"],
        record["created_at"],
        record.get("revoked_at"),
        # Keys stored before grants existed have none.
        tuple(record.get("grants", ())),
    )
