"""Customer state and outboxes in Redis: one pipelined round trip per batch step."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from orchestrator import jsonwire
from orchestrator.contracts.schemas import rewrite_record
from orchestrator.engine.state import CustomerState
from orchestrator.errors import OrchestratorError
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient

__all__ = ["CustomerStore", "Outbox", "StaleStateError", "StoredCustomer"]

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
class Outbox:
    """Effects of applied events not yet carried out: written atomically with the state.

    `records` are (topic kind, key, the record's JSON) for Kafka; `zadd`/`zrem` are timer
    changes in the partition's sorted set `timers`; `membership` (journey, joined?) changes
    in order; `stats` counters to increment.
    """

    timers: str
    records: list[tuple[str, str, bytes]] = field(default_factory=list)
    zadd: list[tuple[str, float]] = field(default_factory=list)
    zrem: list[str] = field(default_factory=list)
    membership: list[tuple[str, bool]] = field(default_factory=list)
    stats: list[tuple[str, str]] = field(default_factory=list)

    def to_wire(self) -> bytes:
        """JSON bytes for Redis."""
        return jsonwire.dumps(
            {
                "timers": self.timers,
                "records": [(k, key, jsonwire.Fragment(v)) for k, key, v in self.records],
                "zadd": self.zadd,
                "zrem": self.zrem,
                "membership": self.membership,
                "stats": self.stats,
            }
        )

    @classmethod
    def from_wire(cls, raw: bytes) -> Outbox:
        """Inverse of `to_wire`; records are validated against their topic's contract (an
        outbox written before records had a version gets current-version records)."""
        data = jsonwire.loads(raw)
        return cls(
            timers=data["timers"],
            records=[(str(k), str(key), rewrite_record(k, v)) for k, key, v in data["records"]],
            zadd=[(str(m), float(d)) for m, d in data["zadd"]],
            zrem=list(data["zrem"]),
            membership=[(str(j), bool(m)) for j, m in data["membership"]],
            stats=[(str(j), str(f)) for j, f in data["stats"]],
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


class CustomerStore:
    """Reads and writes customers' state and outboxes, pipelined per batch."""

    def __init__(self, redis: RedisClient, keys: RedisKeys) -> None:
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
                CustomerState.from_wire(jsonwire.loads(state_raw))
                if state_raw
                else CustomerState(customer_id)
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

    async def settle(self, done: Iterable[tuple[str, Outbox, bytes]]) -> None:
        """One round trip: apply outboxes' Redis effects, then drop the outboxes.

        Effects are merged across the batch (one ZADD per timer set, one SADD per journey...)
        because commands, not bytes, are what cost here. Timer adds precede removals: a
        timer set and cancelled within one batch ends up removed. Every effect is idempotent
        except the live counters, which may count twice after a crash; the interaction log
        is the authoritative record.
        """
        zadd: dict[str, dict[str, float]] = defaultdict(dict)
        zrem: dict[str, list[str]] = defaultdict(list)
        joined: dict[str, set[str]] = defaultdict(set)
        left: dict[str, set[str]] = defaultdict(set)
        counters: Counter[tuple[str, str]] = Counter()
        for customer_id, outbox, _ in done:
            zadd[outbox.timers].update(outbox.zadd)
            zrem[outbox.timers].extend(outbox.zrem)
            final = dict(outbox.membership)  # the last change per journey wins
            for journey, member in final.items():
                (joined if member else left)[journey].add(customer_id)
            counters.update(outbox.stats)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, members in zadd.items():
                if members:
                    pipe.zadd(key, members)
            for key, removed in zrem.items():
                if removed:
                    pipe.zrem(key, *removed)
            for journey, customers in joined.items():
                pipe.sadd(self.keys.journey_members(journey), *customers)
            for journey, customers in left.items():
                pipe.srem(self.keys.journey_members(journey), *customers)
            for (journey, counter), count in counters.items():
                pipe.hincrby(self.keys.journey_stats(journey), counter, count)
            for customer_id, _, wire in done:
                # EVAL, not EVALSHA: cluster pipelines refuse EVALSHA; Redis caches it anyway.
                pipe.eval(_CLEAR_OUTBOX, 1, self.keys.customer(customer_id), wire)
            await pipe.execute()
