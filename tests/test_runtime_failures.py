"""A batch that fails for a transient reason is retried in place; one that fails for another
reason stops the worker and is redelivered, not skipped."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Sequence

import aiohttp
import pytest
from aiokafka.errors import KafkaConnectionError, LeaderNotAvailableError
from mode.threads import WorkerThread
from redis.exceptions import ConnectionError as RedisConnectionError

from orchestrator.control.publisher import EventPublisher
from orchestrator.infra.settings import Settings
from orchestrator.runtime.processor import BatchStats, InboundRecord
from orchestrator.runtime.worker import JourneyWorker
from tests.outage_infra import free_port, health
from tests.runtime_harness import (
    group_state,
    isolated_settings,
    prepare,
    reader,
    running_worker,
    wait_all_consumed,
    wait_until,
)
from tests.runtime_scenario import deploy_scenario, scenario_events, simulated_outcomes


async def _fail(records: Sequence[InboundRecord]) -> BatchStats:
    # Not an error retrying can fix (those are retried in place, see below).
    raise ConnectionError("something went away")


def _faust_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if isinstance(t, WorkerThread)}


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

    worker.processor.process = _fail  # type: ignore[method-assign]
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


async def test_a_failed_worker_among_others_hands_its_partitions_over_and_exits(
    infrastructure: Settings,
) -> None:
    """Two faust workers share the events; one fails, a third joins before it has stopped.

    Before the fix: the failed batch, never acked, made the rebalance wait forever and the
    failed worker's consumer thread outlived `close()` (the process could not exit); and a
    worker that had been through a rebalance before failing raised faust's
    AlreadyConfiguredWarning from `close()`. Afterwards the others apply every event once.
    """
    settings = isolated_settings(infrastructure, feed="faust")
    topics = await prepare(settings)
    await deploy_scenario(settings)
    events = scenario_events(8)
    expected_sends = sum(n for key, n in simulated_outcomes(events).items() if key[0] == "send")
    threads_before = _faust_threads()

    failing = JourneyWorker(settings)
    await failing.start()
    try:
        async with running_worker(settings) as healthy:
            await wait_until(
                lambda: bool(failing.pump.partitions) and bool(healthy.pump.partitions),
                "both workers own partitions",
            )
            failing.processor.process = _fail  # type: ignore[method-assign]
            async with EventPublisher(settings) as publisher:
                await publisher.publish(events)
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(failing.run(), timeout=60)
            # The failed worker is still a member with its batch parked: joining rebalances.
            async with running_worker(settings):

                async def rebalanced() -> bool:
                    return await group_state(settings) == ("Stable", 3)

                await wait_until(rebalanced, "the newcomer's rebalance to complete")
                await failing.close()
                async with reader(settings, topics.outbound) as outbound:
                    messages = await outbound.until(lambda ms: len(ms) >= expected_sends)
    finally:
        await failing.close()

    assert _faust_threads() <= threads_before
    sends = Counter(m["message_id"] for m in messages)
    assert len(sends) == expected_sends
    assert max(sends.values()) == 1


async def test_a_worker_closes_even_if_a_client_swallows_the_cancellation(
    infrastructure: Settings,
) -> None:
    """Seen once in CI: the timer pump went on after `close()` cancelled it, and close hung.

    The stand-in below swallows the cancellation the way a misbehaving client library can;
    the worker's closing flag still ends the pump's loop.
    """
    settings = isolated_settings(infrastructure, feed="aiokafka")
    await prepare(settings)
    worker = JourneyWorker(settings)
    await worker.start()
    polled = asyncio.Event()

    async def swallowing_fire_due() -> int:
        polled.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        return 0

    worker.pump.fire_due = swallowing_fire_due  # type: ignore[method-assign]
    await asyncio.wait_for(polled.wait(), timeout=30)
    closing = asyncio.create_task(worker.close())
    done, _ = await asyncio.wait({closing}, timeout=30)
    assert closing in done, "close() did not finish"
    closing.result()


async def test_a_batch_failing_for_a_transient_reason_is_retried_in_place(
    infrastructure: Settings,
) -> None:
    """Redis and Kafka errors are retried with backoff on the same records; /health says so."""
    port = free_port()
    settings = isolated_settings(infrastructure, feed="aiokafka", health_port=port)
    topics = await prepare(settings)
    await deploy_scenario(settings)
    events = scenario_events(8)
    expected_sends = sum(n for key, n in simulated_outcomes(events).items() if key[0] == "send")
    failures: list[Exception] = [
        RedisConnectionError("Connection closed by server."),
        KafkaConnectionError("Unable to bootstrap"),
        LeaderNotAvailableError(),
    ]
    states: list[str] = []

    async with running_worker(settings) as worker, reader(settings, topics.outbound) as outbound:
        process = worker.processor.process

        async def flaky(records: Sequence[InboundRecord]) -> BatchStats:
            if failures:
                states.append((await health(port))[1]["state"])
                raise failures.pop(0)
            return await process(records)

        worker.processor.process = flaky  # type: ignore[method-assign]
        async with EventPublisher(settings) as publisher:
            await publisher.publish(events)
        messages = await outbound.until(lambda ms: len(ms) >= expected_sends)
        await wait_all_consumed(settings)
        status, body = await health(port)
        metrics = await _get(f"http://127.0.0.1:{port}/metrics")
        assert worker.health.retries == 3

    assert states[0] == "healthy" and set(states[1:]) <= {"waiting_for_redis", "waiting_for_kafka"}
    assert (status, body["state"], body["batch_retries"]) == (200, "healthy", 3)
    assert "orchestrator_worker_batch_retries_total 3.0" in metrics
    assert 'orchestrator_worker_state{state="healthy"} 1.0' in metrics
    applied = [m for m in metrics.splitlines() if m.startswith("orchestrator_worker_events_appl")]
    assert float(applied[0].split()[1]) >= len(events), applied  # timer firings count too
    sends = Counter(m["message_id"] for m in messages)
    assert len(sends) == expected_sends
    assert max(sends.values()) == 1


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.text()
