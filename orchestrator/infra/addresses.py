"""The identity index's addresses: how they are normalised, and the writes that keep them.

An address key (`RedisKeys.address`) says which customer an email address, phone number or
push token belongs to (and, once a connector delivered there, the last message sent to it).
Three writers keep it: the connectors when they deliver (`control/identity.py`), the journey
worker when a profile's `email`, `phone` or `push_token` changes (`runtime/effects.py`), and
erasure, which removes a customer's. The runtime may not import `control`, so what they share
lives here: the normalisation and one script over many addresses, safe on Redis Cluster
(`infra/slotscripts.py`) and idempotent (a batch replayed after a crash writes the same
thing again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline

from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient
from orchestrator.infra.slotscripts import QueuedCall, SlotScript

__all__ = [
    "PROFILE_ADDRESS_FIELDS",
    "address_changes",
    "channel_address",
    "normalise_address",
    "profile_addresses",
    "queue_address_changes",
    "unlink_addresses",
]

# Profile field -> the channel whose address it holds.
PROFILE_ADDRESS_FIELDS: Mapping[str, str] = {"email": "email", "phone": "sms", "push_token": "push"}

# Per address (KEYS[i]): a customer and '1' to point the address at them (a previous owner's
# fields, their last message, go with it, so a reply is never correlated with another
# customer's message), or '0' to forget it only if it still points at them (another customer
# may have it now). In order; returns how many addresses were forgotten.
_CHANGE = SlotScript(
    """
local forgotten = 0
for i, key in ipairs(KEYS) do
  local customer, link = ARGV[2 * i - 1], ARGV[2 * i]
  local owner = redis.call('HGET', key, 'customer_id')
  if link == '1' then
    if owner ~= customer then
      redis.call('DEL', key)
    end
    redis.call('HSET', key, 'customer_id', customer)
  elseif owner == customer then
    forgotten = forgotten + redis.call('DEL', key)
  end
end
return forgotten
"""
)


def normalise_address(address: str) -> str:
    """`whatsapp:+1 555 123` -> `+1555123`; `Ada@Example.COM` -> `ada@example.com`."""
    value = address.strip()
    if value.lower().startswith("whatsapp:"):
        value = value[len("whatsapp:") :]
    if "@" in value:
        return value.lower()
    return "".join(ch for ch in value if ch == "+" or ch.isdigit())


def channel_address(channel: str, address: str) -> str | None:
    """The index's form of an address of `channel`; None for channels without one
    (webhook, in_app). Push tokens are kept whole, under `push:`."""
    if channel == "push":
        return f"push:{address.strip()}" if address.strip() else None
    if channel in ("email", "sms", "whatsapp"):
        return normalise_address(address) or None
    return None


def profile_addresses(profile: Mapping[str, Any]) -> set[str]:
    """The normalised addresses a profile holds (`email`, `phone`, `push_token`)."""
    found = set()
    for field, channel in PROFILE_ADDRESS_FIELDS.items():
        value = profile.get(field)
        if isinstance(value, str):
            address = channel_address(channel, value)
            if address:
                found.add(address)
    return found


def address_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(address, linked?) for each address a profile gained (True) or lost (False)."""
    # Most batches change no address field: skip normalising both profiles' addresses.
    if all(before.get(field) == after.get(field) for field in PROFILE_ADDRESS_FIELDS):
        return []
    old, new = profile_addresses(before), profile_addresses(after)
    return [(a, False) for a in sorted(old - new)] + [(a, True) for a in sorted(new - old)]


def queue_address_changes(
    pipe: Pipeline | ClusterPipeline,
    keys: RedisKeys,
    changes: Sequence[tuple[str, str, bool]],
) -> list[QueuedCall]:
    """Queue on `pipe`, in order, each (customer, address, linked?): the address now belongs
    to the customer (linked), or no longer does. Each call's reply is how many went."""
    return _CHANGE.queue(
        pipe,
        [keys.address(address) for _, address, _ in changes],
        per_key=[(customer, "1" if linked else "0") for customer, _, linked in changes],
    )


async def unlink_addresses(
    redis: RedisClient, keys: RedisKeys, customer_id: str, addresses: Iterable[str]
) -> int:
    """Forget each address still pointing at `customer_id` (one round trip); how many went."""
    async with redis.pipeline(transaction=False) as pipe:
        calls = queue_address_changes(pipe, keys, [(customer_id, a, False) for a in addresses])
        results = await pipe.execute()
    return sum(int(call.reply(results)) for call in calls)
