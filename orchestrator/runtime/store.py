"""Customer state and outboxes in Redis: one pipelined round trip per batch step."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.engine.state import CustomerState
from orchestrator.errors import OrchestratorError
from orchestrator.infra.addresses import queue_address_changes
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient
from orchestrator.infra.slotscripts import SlotScript
from orchestrator.runtime.effects import Effects, Outbox

__all__ = ["CustomerStore", "StaleStateError", "StateStore", "StoredCustomer"]

# Each customer's state, outbox and revision (`KEYS`: customers).
_LOAD = SlotScript(
    """
local found = {}
for i, key in ipairs(KEYS) do
  found[i] = redis.call('HMGET', key, 'state', 'outbox', 'revision')
end
return found
"""
)

# Writes each customer's state and outbox, stamps the outbox with the batch's fence
# (ARGV[1]) and bumps the revision, unless someone wrote that customer since we loaded it
# (per key: state, outbox, revision loaded). Returns the positions of the refused keys.
_SAVE_IF_UNCHANGED = SlotScript(
    """
local refused = {}
for i, key in ipairs(KEYS) do
  local at = 2 + (i - 1) * 3
  local loaded = ARGV[at + 2]
  if (redis.call('HGET', key, 'revision') or '0') ~= loaded then
    refused[#refused + 1] = i
  else
    redis.call('HSET', key, 'state', ARGV[at], 'outbox', ARGV[at + 1], 'fence', ARGV[1],
               'revision', tostring(tonumber(loaded) + 1))
  end
end
return refused
"""
)

# Deletes each outbox only if it still carries this batch's fence (ARGV[1]) and the
# revision this batch's save wrote (per key): an outbox a newer owner wrote (after a
# rebalance) carries another fence, and a save by a version that writes no fence still
# bumps the revision, so either way it survives a slow old owner.
_CLEAR_OUTBOX = SlotScript(
    """
for i, key in ipairs(KEYS) do
  local stored = redis.call('HMGET', key, 'fence', 'revision')
  if stored[1] == ARGV[1] and stored[2] == ARGV[i + 1] then
    redis.call('HDEL', key, 'outbox', 'fence')
  end
end
return 0
"""
)


@dataclass(slots=True)
class StoredCustomer:
    """What Redis holds for one customer: state, any outbox left by a crash, and the revision
    (bumped by every write) that a later write must still find."""

    state: CustomerState
    outbox: Outbox | None
    revision: int = 0


class StaleStateError(OrchestratorError):
    """Another worker wrote these customers' state after this one loaded it.

    Happens only when a worker lost its partitions (stalled past the session timeout, or a
    rebalance moved them while the batch ran) and finished its batch late. The batch is
    abandoned uncommitted; the partition's current owner applies the events.
    """

    # Not retried in place: this worker's partitions moved, so the batch is abandoned
    # uncommitted and the partition's new owner applies it.
    retriable = False

    def __init__(self, customer_ids: list[str]) -> None:
        self.customer_ids = customer_ids
        shown = ", ".join(customer_ids[:5]) + (" ..." if len(customer_ids) > 5 else "")
        super().__init__(
            f"state of {len(customer_ids)} customers ({shown}) changed since this worker loaded "
            "it: another worker owns their partition now; this batch is abandoned"
        )


class StateStore(Protocol):
    """Where the batch core keeps customers' state and outboxes (steps 2, 4 and 6)."""

    async def load(self, customer_ids: Sequence[str]) -> dict[str, StoredCustomer]:
        """Each customer's state (fresh if unknown), leftover outbox and revision."""
        ...

    async def save(self, writes: Sequence[tuple[str, bytes, bytes, int]]) -> str:
        """Write (customer, state, outbox, revision loaded) each atomically, if unchanged;
        raise `StaleStateError` naming the customers someone else wrote since.

        Returns the fence these outboxes carry, unique to this call: `settle` drops an
        outbox only while it still carries it."""
        ...

    async def settle(self, effects: Effects, fence: str) -> None:
        """Apply a batch's merged effects, then drop the outboxes they came from (those
        still carrying `fence` and the revision the save wrote)."""
        ...


class CustomerStore:
    """Reads and writes customers' state and outboxes in Redis, pipelined per batch.

    Each step is one round trip of a few script calls over many customers
    (`infra/slotscripts.py`), not one command per customer.
    """

    def __init__(self, redis: RedisClient, keys: RedisKeys) -> None:
        # Not the whole `WorkerContext`: a store has no business with the producer, and
        # tools read customers with only a Redis client.
        self.redis = redis
        self.keys = keys

    async def load(self, customer_ids: Sequence[str]) -> dict[str, StoredCustomer]:
        """One round trip: each customer's state (fresh if unknown) and pending outbox."""
        async with self.redis.pipeline(transaction=False) as pipe:
            calls = _LOAD.queue(pipe, [self.keys.customer(c) for c in customer_ids])
            results = await pipe.execute()
        loaded: dict[str, StoredCustomer] = {}
        for call in calls:
            found = call.reply(results)
            for i, (state_raw, outbox_raw, revision) in zip(call.indices, found, strict=True):
                customer_id = customer_ids[i]
                state = (
                    CustomerState.from_stored(state_raw)
                    if state_raw
                    else CustomerState(customer_id)
                )
                outbox = Outbox.from_wire(outbox_raw) if outbox_raw else None
                loaded[customer_id] = StoredCustomer(state, outbox, int(revision or 0))
        return loaded

    async def save(self, writes: Sequence[tuple[str, bytes, bytes, int]]) -> str:
        """One round trip: set each customer's state and outbox together, if unchanged.

        `writes` are (customer, state, outbox, revision loaded). Each customer's write
        applies only when its stored revision is still the loaded one, so a worker that lost
        its partitions cannot overwrite the new owner's writes. Raises `StaleStateError`
        naming the customers whose write was refused; returns the fence the written
        outboxes carry (random, so no other save's can equal it).
        """
        fence = os.urandom(12).hex()
        async with self.redis.pipeline(transaction=False) as pipe:
            calls = _SAVE_IF_UNCHANGED.queue(
                pipe,
                [self.keys.customer(w[0]) for w in writes],
                shared=[fence],
                per_key=[(state, outbox, revision) for _, state, outbox, revision in writes],
            )
            results = await pipe.execute()
        stale = [
            writes[call.indices[position - 1]][0]
            for call in calls
            for position in call.reply(results)
        ]
        if stale:
            raise StaleStateError(stale)
        return fence

    async def settle(self, effects: Effects, fence: str) -> None:
        """One round trip: apply a batch's merged effects, then drop the outboxes.

        Timer adds precede removals: a timer set and cancelled within one batch ends up
        removed. Every effect is idempotent except the live counters, which may count twice
        after a crash; the interaction log is the authoritative record. An outbox is dropped
        only if it still carries `fence` and the revision this worker's save wrote.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, members in effects.zadd.items():
                if members:
                    pipe.zadd(key, members)
            for key, removed in effects.zrem.items():
                if removed:
                    pipe.zrem(key, *removed)
            for journey, customers in effects.joined.items():
                pipe.sadd(self.keys.journey_members(journey), *customers)
            for journey, customers in effects.left.items():
                pipe.srem(self.keys.journey_members(journey), *customers)
            for (journey, counter), count in effects.counters.items():
                pipe.hincrby(self.keys.journey_stats(journey), counter, count)
            queue_address_changes(pipe, self.keys, effects.addresses)
            # Last: an outbox goes only once its effects are in (a crash between keeps it).
            _CLEAR_OUTBOX.queue(
                pipe,
                [self.keys.customer(customer) for customer, _ in effects.cleared],
                shared=[fence],
                per_key=[(revision,) for _, revision in effects.cleared],
            )
            await pipe.execute()
