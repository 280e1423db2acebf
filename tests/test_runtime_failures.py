"""A batch that fails (Redis or Kafka trouble) stops the worker and is redelivered, not skipped."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest

from orchestrator.runtime.processor import BatchStats, InboundRecord
from orchestrator.runtime.publisher import EventPublisher
from orchestrator.runtime.settings import Settings
from orchestrator.runtime.worker import JourneyWorker
from tests.runtime_harness import isolated_settings, prepare, reader, running_worker
from tests.runtime_scenario import deploy_scenario, scenario_events, simulated_outcomes


@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_failed_batch_stops_the_worker_and_is_redelivered(
    infrastructure: Settings, feed: str
) -> None:
    settings = isolated_settings(infrastructure, feed=feed)
    topics = await prepare(settings)
    await deploy_scenario(settings)
    events = scenario_events(8)
    expected_sends = sum(n for key, n in simulated_outcomes(events).items() if key[0] == "send")

    worker = JourneyWorker(settings)
    await worker.start()
    process = worker.processor.process

    async def fail_once(records: Sequence[InboundRecord]) -> BatchStats:
        raise ConnectionError("redis went away")

    worker.processor.process = fail_once  # type: ignore[method-assign]
    try:
        async with EventPublisher(settings) as publisher:
            await publisher.publish(events)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(worker.run(), timeout=60)
    finally:
        worker.processor.process = process  # type: ignore[method-assign]
        await worker.close()

    async with running_worker(settings), reader(settings, topics.outbound) as outbound:
        messages = await outbound.until(lambda ms: len(ms) >= expected_sends)
    sends = Counter(m["message_id"] for m in messages)
    assert len(sends) == expected_sends
    assert max(sends.values()) == 1
