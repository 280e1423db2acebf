"""Engine actions → effects: the outbox one customer's events fill, and what settling a
batch's outboxes does to Redis.

The batch core writes an `Outbox` atomically with the customer's state (step 4 of the commit
path), produces its records (step 5), then applies its Redis effects merged across the batch
(step 6, `merge`). This module decides what goes where; the store and the producer only
carry it out.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from orchestrator import jsonwire
from orchestrator.contracts.codec import timer_member
from orchestrator.contracts.outbound import OutboundMessage
from orchestrator.contracts.recording import action_interaction, inbound_interaction
from orchestrator.contracts.schemas import rewrite_record
from orchestrator.engine.actions import (
    Action,
    Entered,
    Exited,
    LateEvent,
    Sent,
    Suppressed,
    TimerCancelled,
    TimerFired,
    TimerSet,
)
from orchestrator.engine.advance import event_time
from orchestrator.engine.events import Event

__all__ = ["BatchStats", "Effects", "Outbox", "collect", "merge"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BatchStats:
    """What one batch did (for progress reporting and benchmarks)."""

    events: int = 0
    duplicates: int = 0
    deadletters: int = 0
    late: int = 0
    actions: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Outbox:
    """Effects of applied events not yet carried out: written atomically with the state.

    `records` are (topic kind, key, the record's JSON) for Kafka; `zadd`/`zrem` are timer
    changes in the partition's sorted set `timers`; `membership` (journey, joined?) changes
    in order; `stats` counters to increment; `addresses` (normalised address, linked?) the
    identity index changes of the customer's profile (`infra/addresses.py`).
    """

    timers: str
    records: list[tuple[str, str, bytes]] = field(default_factory=list)
    zadd: list[tuple[str, float]] = field(default_factory=list)
    zrem: list[str] = field(default_factory=list)
    membership: list[tuple[str, bool]] = field(default_factory=list)
    stats: list[tuple[str, str]] = field(default_factory=list)
    addresses: list[tuple[str, bool]] = field(default_factory=list)

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
                "addresses": self.addresses,
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
            # Outboxes written before profiles kept the index have none.
            addresses=[(str(a), bool(linked)) for a, linked in data.get("addresses", [])],
        )


def collect(
    outbox: Outbox, event: Event, actions: Sequence[Action], now: float, stats: BatchStats
) -> None:
    """Add to `outbox` what applying `event` (which produced `actions`) must still do."""
    customer = event.customer_id
    inbound = inbound_interaction(event, event_time(event, now), now)
    outbox.records.append(("interactions", customer, inbound.to_json()))
    for index, action in enumerate(actions):
        if isinstance(action, TimerSet):
            outbox.zadd.append((timer_member(action).decode(), action.due))
            continue
        if isinstance(action, TimerCancelled | TimerFired):
            # A timer fired before an event (event time) is removed like a cancelled one:
            # its own `timer.fired` record would change nothing.
            outbox.zrem.append(timer_member(action).decode())
            continue
        record = action_interaction(action, event.event_id, index)
        outbox.records.append(("interactions", customer, record.to_json()))
        stats.actions[record.type] = stats.actions.get(record.type, 0) + 1
        if isinstance(action, Sent):
            message = OutboundMessage.of(action, event.event_id)
            outbox.records.append(("outbound", customer, message.to_json()))
            outbox.stats.append((action.journey, f"sent:{action.channel}"))
        elif isinstance(action, Entered):
            outbox.membership.append((action.journey, True))
            outbox.stats.append((action.journey, "entered"))
        elif isinstance(action, Exited):
            outbox.membership.append((action.journey, False))
            outbox.stats.append((action.journey, f"exit:{action.reason}"))
        elif isinstance(action, Suppressed):
            outbox.stats.append((action.journey, f"suppressed:{action.reason}"))
        elif isinstance(action, LateEvent):
            stats.late += 1
            log.debug(
                "late event %s of %s: occurred %.3fs before the customer's journeys had "
                "already moved on; applied as of then",
                action.event_id,
                customer,
                action.at - action.occurred_at,
            )


@dataclass(slots=True)
class Effects:
    """A batch's outboxes merged into Redis commands: one per key, not one per action.

    `zadd`/`zrem` by timers key; `joined`/`left` customers by journey; `counters` by
    (journey, counter); `addresses` (customer, address, linked?) in order; `cleared` the
    (customer, revision its save wrote) whose outbox to drop once applied.
    """

    zadd: dict[str, dict[str, float]] = field(default_factory=dict)
    zrem: dict[str, list[str]] = field(default_factory=dict)
    joined: dict[str, set[str]] = field(default_factory=dict)
    left: dict[str, set[str]] = field(default_factory=dict)
    counters: Counter[tuple[str, str]] = field(default_factory=Counter)
    addresses: list[tuple[str, str, bool]] = field(default_factory=list)
    cleared: list[tuple[str, int]] = field(default_factory=list)


def merge(done: Iterable[tuple[str, Outbox, int]]) -> Effects:
    """Merge (customer, outbox, revision its save wrote) into one batch's `Effects`.

    Commands, not bytes, are what cost in Redis, so effects are merged across the batch.
    The last membership change per customer and journey wins.
    """
    effects = Effects()
    for customer_id, outbox, revision in done:
        effects.zadd.setdefault(outbox.timers, {}).update(outbox.zadd)
        effects.zrem.setdefault(outbox.timers, []).extend(outbox.zrem)
        for journey, member in dict(outbox.membership).items():
            (effects.joined if member else effects.left).setdefault(journey, set()).add(customer_id)
        effects.counters.update(outbox.stats)
        effects.addresses.extend((customer_id, a, linked) for a, linked in outbox.addresses)
        effects.cleared.append((customer_id, revision))
    return effects
