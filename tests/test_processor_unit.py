"""The batch core without a broker: `BatchProcessor` driven through the store, producer and
clock Protocols with in-memory parts (the real-broker tests cover the same paths end to end).

Redis is a `MagicMock(spec_set=...)`: the processor must never touch it directly.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

import pytest
from aiokafka.errors import KafkaConnectionError
from redis.asyncio import Redis

from orchestrator import jsonwire
from orchestrator.engine.catalog import catalog_of
from orchestrator.engine.events import Event, timer_event
from orchestrator.infra.batching import ProduceUnavailableError
from orchestrator.infra.origin import EngineOrigin
from orchestrator.infra.settings import Settings
from orchestrator.runtime.context import WorkerContext
from orchestrator.runtime.processor import BatchProcessor, InboundRecord
from orchestrator.runtime.store import StaleStateError
from tests.journey_fixtures import T0, compile_journey, event
from tests.runtime_fakes import FixedClock, MemoryProducer, MemoryStore

CONFIRM = compile_journey(
    """
    id: u-confirm
    name: Confirm delivery
    trigger: {event: u.ordered}
    steps:
      - id: confirm
        send: {channel: in_app, template: note}
      - id: await_confirmation
        wait_for:
          event: u.confirmed
          timeout: 40s
          on_event: thanks
          on_timeout: chase
      - id: chase
        send: {channel: in_app, template: note}
        next: end
      - id: thanks
        send: {channel: in_app, template: note}
      - id: end
        exit: {}
    """,
    {"note": 'in_app: {title: "{{ journey.last_event.name }}", body: "{{ event.name }}"}'},
)
PARTITION = 3


class Core:
    """A processor over in-memory parts, and a way to feed it records."""

    def __init__(self) -> None:
        self.journal: list[str] = []
        self.store = MemoryStore(self.journal)
        self.producer = MemoryProducer(self.journal)
        self.clock = FixedClock(T0 + 3600)
        self.origin = EngineOrigin.from_secret(b"k" * 32)
        self.context = WorkerContext.of(
            Settings(topic_prefix="u.", redis_prefix="u:"),
            producer=self.producer,
            redis=MagicMock(spec_set=Redis),
            clock=self.clock,
            origin=self.origin,
        )
        self.processor = BatchProcessor(
            self.context, store=self.store, catalog=lambda: catalog_of([CONFIRM])
        )
        self.offset = 0
        self.timers = self.context.timers_key(PARTITION)

    def record(
        self, value: bytes | None, key: bytes | None = b"c1", signed: bool = False
    ) -> InboundRecord:
        """The next record of the partition, signed by the engine if asked."""
        self.offset += 1
        headers = self.origin.sign(key, value) if signed and value is not None else None
        return InboundRecord(
            self.context.topics.events, PARTITION, self.offset, key, value, headers
        )

    def of(self, *events: Event) -> list[InboundRecord]:
        """Records of customer events, keyed by customer."""
        return [self.record(jsonwire.dumps(e.to_wire()), e.customer_id.encode()) for e in events]

    def fired(self, customer: str = "c1") -> InboundRecord:
        """The signed `timer.fired` record the pump makes of the customer's pending timer."""
        ((member, due),) = self.store.timers[self.timers].items()
        owner, journey, instance, timer = jsonwire.loads(member)
        assert owner == customer
        fired = timer_event(customer, journey, instance, timer, due)
        return self.record(jsonwire.dumps(fired.to_wire()), customer.encode(), signed=True)

    def sent(self) -> list[str]:
        """The journey step of each outbound message, in order."""
        return [m["step"] for m in self.producer.values(self.context.topics.outbound)]

    def interactions(self, kind: str) -> list[dict[str, Any]]:
        """The interaction records of one type."""
        records = self.producer.values(self.context.topics.interactions)
        return [r for r in records if r["type"] == kind]


def _steps(journal: list[str]) -> list[str]:
    """The journal with repeats in a row folded (one produce per topic partition)."""
    return [step for n, step in enumerate(journal) if n == 0 or journal[n - 1] != step]


def ordered(at: float = T0, customer: str = "c1") -> Event:
    return event("u.ordered", at, customer)


async def test_state_and_outbox_are_saved_before_produce_and_settled_after() -> None:
    core = Core()
    saved: list[int] = []
    original = core.producer.send_batch

    async def send_batch(batch: Any, topic: str, *, partition: int) -> Any:
        # What the store holds when the first record leaves: the outbox, not yet settled.
        outbox = core.store.outbox("c1")
        saved.append(len(outbox.records) if outbox else 0)
        return await original(batch, topic, partition=partition)

    core.producer.send_batch = send_batch  # type: ignore[method-assign]
    stats = await core.processor.process(core.of(ordered()))

    assert _steps(core.journal) == ["load", "save", "produce", "settle"]
    # inbound, entered, step (send), sent, step (wait) interactions, and the outbound message
    assert saved[0] == 6
    assert stats.events == 1 and stats.duplicates == 0
    assert core.sent() == ["confirm"]
    assert core.store.outbox("c1") is None
    assert list(core.store.timers[core.timers].values()) == [T0 + 40]
    assert core.store.members == {"u-confirm": {"c1"}}
    assert core.store.counters == {("u-confirm", "entered"): 1, ("u-confirm", "sent:in_app"): 1}


async def test_a_produce_failure_leaves_the_outbox_for_the_next_load() -> None:
    core = Core()
    batch = core.of(ordered())
    core.producer.failure = KafkaConnectionError("broker away")
    with pytest.raises(ProduceUnavailableError):
        await core.processor.process(batch)
    assert _steps(core.journal) == ["load", "save", "produce"], "settled unproduced effects"
    left = core.store.outbox("c1")
    assert left is not None and len(left.records) == 6
    assert core.store.timers == {} and core.producer.acknowledged == []

    core.producer.failure = None
    stats = await core.processor.process(batch)  # the batch is redelivered
    assert stats.duplicates == 1
    assert core.sent() == ["confirm"]
    assert len(core.producer.acknowledged) == 6
    assert core.store.outbox("c1") is None
    assert list(core.store.timers[core.timers].values()) == [T0 + 40]


async def test_a_duplicate_changes_nothing_and_sends_nothing() -> None:
    core = Core()
    batch = core.of(ordered())
    await core.processor.process(batch)
    core.journal.clear()
    sent = list(core.producer.acknowledged)

    stats = await core.processor.process(batch)
    assert stats.events == 1 and stats.duplicates == 1
    assert core.journal == ["load"], "a duplicate wrote, produced or settled"
    assert core.producer.acknowledged == sent


async def test_undecodable_and_unsigned_records_become_dead_letters() -> None:
    core = Core()
    unsigned = timer_event("c1", "u-confirm", "i1", "t1", T0)
    records = [
        core.record(b"{not json"),
        core.record(jsonwire.dumps(ordered().to_wire()), key=None),
        core.record(jsonwire.dumps(unsigned.to_wire())),
        *core.of(ordered(customer="c2")),
    ]
    stats = await core.processor.process(records)

    letters = core.producer.values(core.context.topics.deadletter)
    assert stats.deadletters == 3 and len(letters) == 3
    by_offset = {letter["source"]["offset"]: letter["reason"] for letter in letters}
    assert sorted(by_offset) == [1, 2, 3]
    assert "not valid JSON" in by_offset[1]
    assert "is not the customer_id" in by_offset[2]
    assert "proof of origin" in by_offset[3]
    assert set(core.store.customers) == {"c2"}, "a dead letter touched a customer's state"
    assert core.sent() == ["confirm"]


async def test_timers_are_set_then_cancelled_in_the_partitions_sorted_set() -> None:
    core = Core()
    await core.processor.process(core.of(ordered()))
    assert len(core.store.timers[core.timers]) == 1

    await core.processor.process(core.of(event("u.confirmed", T0 + 10)))
    assert core.store.timers[core.timers] == {}
    assert core.sent() == ["confirm", "thanks"]
    assert core.store.members == {"u-confirm": set()}


async def test_a_timer_set_and_cancelled_within_one_batch_ends_up_removed() -> None:
    core = Core()
    await core.processor.process(core.of(ordered(), event("u.confirmed", T0 + 10)))
    assert core.store.timers[core.timers] == {}
    assert core.sent() == ["confirm", "thanks"]


async def test_a_fired_timer_advances_the_journey_and_leaves_the_set() -> None:
    core = Core()
    await core.processor.process(core.of(ordered()))
    stats = await core.processor.process([core.fired()])

    assert stats.deadletters == 0
    assert core.sent() == ["confirm", "chase"]
    assert core.store.timers[core.timers] == {}
    assert core.store.counters[("u-confirm", "exit:completed")] == 1


async def test_a_timer_due_before_a_customer_event_fires_first() -> None:
    core = Core()
    await core.processor.process(core.of(ordered()))
    late = core.fired()  # what the pump would produce, had it not lagged
    # The confirmation comes after the 40 s timeout: event time says the chase went first,
    # whether or not the pump has fired the timer yet.
    await core.processor.process(core.of(event("u.confirmed", T0 + 100)))

    assert core.sent() == ["confirm", "chase"]
    assert core.store.timers[core.timers] == {}
    assert core.store.counters[("u-confirm", "exit:completed")] == 1
    # The pump's late firing of the timer that already fired changes nothing.
    await core.processor.process([late])
    assert core.sent() == ["confirm", "chase"]


async def test_a_batch_whose_customers_another_worker_wrote_is_abandoned() -> None:
    core = Core()
    await core.processor.process(core.of(ordered()))
    core.journal.clear()
    produced = list(core.producer.acknowledged)

    def another_worker_writes() -> None:
        core.store.customers["c1"].revision += 1

    core.store.after_load = another_worker_writes
    with pytest.raises(StaleStateError) as refused:
        await core.processor.process(core.of(event("u.confirmed", T0 + 10)))
    assert refused.value.customer_ids == ["c1"]
    assert core.journal == ["load", "save"], "an abandoned batch produced or settled"
    assert core.producer.acknowledged == produced
    assert len(core.store.state("c1").applied) == 1, "the abandoned event was applied"
