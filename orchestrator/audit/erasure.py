"""Erasing a customer (right to erasure) by crypto-shredding.

1. In one transaction: the customer's data key is destroyed (set to NULL, kept as a
   tombstone so records arriving later are stored with their personal fields erased), the
   erasure is recorded in `audit_erasures`, and the task figures kept for the customer go
   (`measure_task_customers`: computed with their event properties readable; the next
   call computes them again without).
2. The customer's live state in Redis goes: their `{c:<id>}` hash, their membership of
   each journey they were in, and the identity index's entries for their profile's
   addresses (email, phone, push token) while those still point at them.

The stored rows stay as they were, ciphertext and all, so the hash chains still verify.
Run again after a failure: each step is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from orchestrator.engine.state import CustomerState
from orchestrator.infra.addresses import profile_addresses, unlink_addresses
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient

__all__ = ["Erasure", "erase_customer"]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure did (`known`: the store had a key for the customer already)."""

    customer_id: str
    erased_at: datetime
    known: bool
    records: int
    redis_keys: int


async def erase_customer(
    conn: Connection, redis: RedisClient, keys: RedisKeys, customer_id: str, operator: str
) -> Erasure:
    """Destroy `customer_id`'s data key, record the erasure, delete their Redis state."""
    # Step 2 reads the state first, for the journeys to leave; it is deleted after step 1.
    raw = await redis.hget(keys.customer(customer_id), "state")
    state = CustomerState.from_stored(raw) if raw else None
    journeys = sorted({i.journey for i in state.instances.values()}) if state else []
    addresses = profile_addresses(state.profile) if state else set()
    # Step 1
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO audit_customer_keys (customer_id, key, erased_at) VALUES (%s, NULL, now())"
            " ON CONFLICT (customer_id) DO UPDATE SET key = NULL,"
            " erased_at = coalesce(audit_customer_keys.erased_at, now())"
            " RETURNING erased_at, (xmax <> 0)",
            (customer_id,),
        )
        row = await cur.fetchone()
        erased_at, known = (row[0], bool(row[1])) if row else (datetime.now(UTC), False)
        cur = await conn.execute(
            "SELECT count(*) FROM audit_records WHERE customer_id = %s", (customer_id,)
        )
        counted = await cur.fetchone()
        redis_keys = 1 + len(journeys) if raw else 0
        await conn.execute(
            "INSERT INTO audit_erasures (customer_id, erased_at, operator, redis_keys)"
            " VALUES (%s, clock_timestamp(), %s, %s)",
            (customer_id, operator, redis_keys),
        )
        await conn.execute(
            "DELETE FROM measure_task_customers WHERE customer_id = %s", (customer_id,)
        )
    # Step 2
    for journey in journeys:
        await redis.srem(keys.journey_members(journey), customer_id)
    await unlink_addresses(redis, keys, customer_id, addresses)
    await redis.delete(keys.customer(customer_id))
    return Erasure(customer_id, erased_at, known, int(counted[0]) if counted else 0, redis_keys)
