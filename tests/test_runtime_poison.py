"""An event that makes the engine fail is parked in the dead letters; the batch goes on."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from orchestrator import jsonwire
from orchestrator.contracts.codec import DeadLetter, decode_event
from orchestrator.engine.catalog import DeployedJourney
from orchestrator.engine.events import Event
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from orchestrator.runtime.context import WorkerContext
from orchestrator.runtime.processor import BatchProcessor, InboundRecord
from orchestrator.runtime.store import CustomerStore
from tests.runtime_fakes import FixedClock
from tests.runtime_harness import isolated_settings, prepare, reader


class _ExplodingCatalog(Mapping[str, DeployedJourney]):
    """A catalog that breaks the engine while `event_name` is `explode` (a stand-in for a bug)."""

    def __init__(self) -> None:
        self.event_name = ""

    def __getitem__(self, key: str) -> DeployedJourney:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        if self.event_name == "explode":
            raise RuntimeError("boom")
        return iter(())

    def __len__(self) -> int:
        return 0


async def test_engine_failure_goes_to_deadletter_and_batch_continues(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    keys = RedisKeys(settings.redis_prefix)
    redis = Redis.from_url(settings.redis_url)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    catalog = _ExplodingCatalog()
    events = [
        Event("e1", "c1", "explode", 1_700_000_000.0),
        Event("e2", "c2", "profile.updated", 1_700_000_000.0, None, {"tier": "gold"}),
    ]
    records = [
        InboundRecord(topics.events, 0, n, e.customer_id.encode(), jsonwire.dumps(e.to_wire()))
        for n, e in enumerate(events)
    ]

    context = WorkerContext.of(
        settings, producer=producer, redis=redis, clock=FixedClock(1_700_000_000.0)
    )
    processor = BatchProcessor(context, store=CustomerStore(redis, keys), catalog=lambda: catalog)
    try:
        catalog.event_name = "explode"
        stats = await processor.process(records[:1])
        catalog.event_name = ""
        more = await processor.process(records[1:])
        stored = await CustomerStore(redis, keys).load(["c1", "c2"])
        async with reader(settings, topics.deadletter) as letters:
            found = await letters.until(lambda vs: len(vs) >= 1)
    finally:
        await producer.stop()
        await redis.aclose()
    assert stats.deadletters == 1 and more.deadletters == 0
    assert found[0]["reason"] == "engine error: RuntimeError: boom"
    assert found[0]["source"] == {"topic": topics.events, "partition": 0, "offset": 0}
    assert stored["c1"].state.applied == []
    assert stored["c2"].state.profile == {"tier": "gold"}


def test_events_keyed_by_anything_but_their_customer_are_dead_letters() -> None:
    event = Event("e1", "c1", "signed_up", 1_700_000_000.0)
    value = jsonwire.dumps(event.to_wire())
    assert decode_event(value, b"c1", "events", 3, 7) == event
    for key in (b"c2", None):
        letter = decode_event(value, key, "events", 3, 7)
        assert isinstance(letter, DeadLetter)
        assert letter.reason.startswith(f"record key {key!r} is not the customer_id 'c1'")
        assert (letter.partition, letter.offset, letter.value) == (3, 7, value)
