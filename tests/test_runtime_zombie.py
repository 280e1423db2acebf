"""A worker that lost its partitions cannot overwrite what the new owner wrote."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from orchestrator import jsonwire
from orchestrator.engine.catalog import catalog_of
from orchestrator.engine.events import Event
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.runtime.context import WorkerContext
from orchestrator.runtime.processor import BatchProcessor, InboundRecord
from orchestrator.runtime.store import CustomerStore, StaleStateError
from tests.runtime_fakes import FixedClock
from tests.runtime_harness import isolated_settings, prepare

NOW = 1_700_000_000.0


def _record(topic: str, offset: int, event: Event) -> InboundRecord:
    return InboundRecord(
        topic, 0, offset, event.customer_id.encode(), jsonwire.dumps(event.to_wire())
    )


async def test_late_write_of_a_stalled_worker_is_refused(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    keys = RedisKeys(settings.redis_prefix)
    redis = connect_redis(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    store = CustomerStore(redis, keys)
    context = WorkerContext.of(settings, producer=producer, redis=redis, clock=FixedClock(NOW))
    try:

        def processor() -> BatchProcessor:
            return BatchProcessor(context, store=store, catalog=lambda: catalog_of([]))

        first = Event("e1", "c1", "profile.updated", NOW, None, {"tier": "silver"})
        second = Event("e2", "c1", "profile.updated", NOW, None, {"tier": "gold"})
        await processor().process([_record(topics.events, 0, first)])

        # The stalled worker loaded c1 before the new owner applied `second`...
        stalled = await store.load(["c1"])
        await processor().process([_record(topics.events, 1, second)])
        # ...and now writes what it computed from the old state.
        with pytest.raises(StaleStateError) as refused:
            await store.save([("c1", b'{"customer_id":"c1"}', b"{}", stalled["c1"].revision)])
        current = (await store.load(["c1"]))["c1"]
    finally:
        await producer.stop()
        await redis.aclose()
    assert refused.value.customer_ids == ["c1"]
    assert current.state.profile == {"tier": "gold"}
    assert current.state.applied == ["e1", "e2"]
    assert current.revision == stalled["c1"].revision + 1
