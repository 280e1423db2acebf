"""Customer state and outboxes in Redis: one pipelined round trip per batch step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.engine.state import CustomerState
from orchestrator.errors import OrchestratorError
from orchestrator.infra.addresses import queue_address_change
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient
from orchestrator.runtime.effects import Effects, Outbox

__all__ = ["CustomerStore", "StaleStateError", "StateStore", "StoredCustomer"]

# Writes state and outbox and bumps the revision, unless someone wrote since we loaded.
_SAVE_IF_UNCHANGED = """
if (redis.call('HGET', KEYS[1], 'revision') or '0') ~= ARGV[3] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'outbox', ARGV[2],
           'revision', tostring(tonumber(ARGV[3]) + 1))
return 1
"""

# Deletes the outbox only if it is still the one this worker wrote: a newer owner's outbox
# (after a rebalance) must survive a slow old owner.
_CLEAR_OUTBOX = """
if redis.call('HGET', KEYS[1], 'outbox') == ARGV[1] then
  return redis.call('HDEL', KEYS[1], 'outbox')
end
return 0
"""


@dataclass(slots=True)
class StoredCustomer:
    """What Redis holds for one customer: state, any outbox left by a crash, and the revision
    (bumped by every write) that a later write must still find."""

    state: CustomerState
    outbox: Outbox | None
    revision: int = 0


class StaleStateError(OrchestratorError):
    """Another worker wrote these customers' state after this one loaded it.

    Happens only when a worker lost its partitions (stalled past the session timeout) and
    finished its batch late. The batch is abandoned uncommitted; the partition's current owner
    applies the events.
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

    async def save(self, writes: Sequence[tuple[str, bytes, bytes, int]]) -> None:
        """Write (customer, state, outbox, revision loaded) each atomically, if unchanged;
        raise `StaleStateError` naming the customers someone else wrote since."""
        ...

    async def settle(self, effects: Effects) -> None:
        """Apply a batch's merged effects, then drop the outboxes they came from."""
        ...


class CustomerStore:
    """Reads and writes customers' state and outboxes in Redis, pipelined per batch."""

    def __init__(self, redis: RedisClient, keys: RedisKeys) -> None:
        # Not the whole `WorkerContext`: a store has no business with the producer, and
        # tools read customers with only a Redis client.
        self.redis = redis
        self.keys = keys

    async def load(self, customer_ids: Sequence[str]) -> dict[str, StoredCustomer]:
        """One round trip: each customer's state (fresh if unknown) and pending outbox."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for customer_id in customer_ids:
                pipe.hmget(self.keys.customer(customer_id), "state", "outbox", "revision")
            replies = await pipe.execute()
        loaded: dict[str, StoredCustomer] = {}
        for customer_id, (state_raw, outbox_raw, revision) in zip(
            customer_ids, replies, strict=True
        ):
            state = (
                CustomerState.from_stored(state_raw) if state_raw else CustomerState(customer_id)
            )
            outbox = Outbox.from_wire(outbox_raw) if outbox_raw else None
            loaded[customer_id] = StoredCustomer(state, outbox, int(revision or 0))
        return loaded

    async def save(self, writes: Sequence[tuple[str, bytes, bytes, int]]) -> None:
        """One round trip: set each customer's state and outbox together, if unchanged.

        `writes` are (customer, state, outbox, revision loaded). Each write is one script on
        one key: it applies only when the stored revision is still the loaded one, so a
        worker that lost its partitions cannot overwrite the new owner's writes. Raises
        `StaleStateError` naming the customers whose write was refused.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            for customer_id, state, outbox, revision in writes:
                pipe.eval(
                    _SAVE_IF_UNCHANGED, 1, self.keys.customer(customer_id), state, outbox, revision
                )
            applied = await pipe.execute()
        stale = [w[0] for w, ok in zip(writes, applied, strict=True) if not ok]
        if stale:
            raise StaleStateError(stale)

    async def settle(self, effects: Effects) -> None:
        """One round trip: apply a batch's merged effects, then drop the outboxes.

        Timer adds precede removals: a timer set and cancelled within one batch ends up
        removed. Every effect is idempotent except the live counters, which may count twice
        after a crash; the interaction log is the authoritative record. An outbox is dropped
        only if it is still the one this worker wrote.
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
            for customer_id, address, linked in effects.addresses:
                queue_address_change(pipe, self.keys, customer_id, address, linked)
            for customer_id, wire in effects.cleared:
                # EVAL, not EVALSHA: cluster pipelines refuse EVALSHA; Redis caches it anyway.
                pipe.eval(_CLEAR_OUTBOX, 1, self.keys.customer(customer_id), wire)
            await pipe.execute()
